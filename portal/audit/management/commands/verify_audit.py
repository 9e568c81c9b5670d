"""`manage.py verify_audit`: recompute the ledger's hash chain; exit 1 if anything changed.

The sealed chain is verified; events still waiting for their seal are not part of it yet. One
waiting longer than AUDIT_MAX_SEAL_SECONDS means the sequencer is not keeping up (or a
transaction has been left open): the command names such events and exits 2.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.audit import sequencer
from portal.audit.verify import check_checkpoints, verify_chain

OVERDUE = 2


class Command(BaseCommand):
    help = (
        "Verify the audit ledger's hash chain (and its checkpoints). Exit 0 intact, 1 broken, "
        "2 intact but with events left unsealed longer than AUDIT_MAX_SEAL_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="processes that share a long ledger's hashing (default: one per CPU)",
        )

    def handle(self, *args, workers: int, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        verdict = verify_chain(workers=workers)
        if not verdict.intact:
            self.stderr.write(
                f"Audit ledger BROKEN at event #{verdict.broken_at}: {verdict.reason}. "
                f"{verdict.checked} events before it are intact."
            )
            raise SystemExit(1)
        rewritten = check_checkpoints(verdict)
        if rewritten:
            self.stderr.write(f"Audit ledger BROKEN: {rewritten}.")
            raise SystemExit(1)
        if verdict.checked == 0:
            self.stdout.write("Audit ledger intact: no events sealed yet.")
        else:
            self.stdout.write(
                f"Audit ledger intact: {verdict.checked} events, head #{verdict.head_sequence} "
                f"{verdict.head_hash}."
            )
        self._unsealed()

    def _unsealed(self) -> None:
        waiting = sequencer.backlog()
        if not waiting.count:
            return
        if not waiting.overdue:
            self.stdout.write(f"Pending seal: {waiting.describe()}.")
            return
        now = timezone.now()
        self.stderr.write(
            f"Audit ledger NOT FULLY SEALED: {waiting.describe()}. The sequencer (beat job "
            "audit.seal) is not keeping up, or a transaction has been left open."
        )
        for event in sequencer.overdue():
            self.stderr.write(
                f"  unsealed: event {event.pk} {event.action} {event.object_reference!r}, "
                f"recorded {event.at:%Y-%m-%d %H:%M:%S} UTC, "
                f"waiting {(now - event.at).total_seconds():.0f} s "
                f"(allowed {settings.AUDIT_MAX_SEAL_SECONDS} s)"
            )
        raise SystemExit(OVERDUE)
