"""`manage.py verify_audit`: recompute the ledger's hash chain; exit 1 if anything changed.

The sealed chain is verified; events still waiting for their seal are not part of it yet. One
waiting longer than AUDIT_MAX_SEAL_SECONDS means the sequencer is not keeping up (or a
transaction has been left open): the command names such events and exits 2.

The chain is also compared with the checkpoints written outside the database (the file
AUDIT_CHECKPOINT_SINK names, or `--checkpoints FILE`, e.g. a copy fetched from that other
volume). A checkpoint beyond the ledger's head means sealed events are gone, as after a restore
from a backup older than that checkpoint: the command says so and exits 3.
"""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.audit import sequencer
from portal.audit.checkpoints import read_sink, sink_file
from portal.audit.verify import (
    BEHIND,
    REWRITTEN,
    check_checkpoints,
    check_external_checkpoints,
    verify_chain,
)

BROKEN = 1
OVERDUE = 2
BEHIND_CHECKPOINT = 3


class Command(BaseCommand):
    help = (
        "Verify the audit ledger's hash chain (and its checkpoints). Exit 0 intact, 1 broken, "
        "2 intact but with events left unsealed longer than AUDIT_MAX_SEAL_SECONDS, 3 intact but "
        "behind a checkpoint kept outside the database (restored from an older backup)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="processes that share a long ledger's hashing (default: one per CPU)",
        )
        parser.add_argument(
            "--checkpoints",
            type=Path,
            default=None,
            help="a file of checkpoints kept outside the database, one JSON object a line, as "
            "AUDIT_CHECKPOINT_SINK writes them (default: that sink's file, when it names one)",
        )

    def handle(self, *args, workers: int, checkpoints: Path | None, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        external = self._external(checkpoints)
        verdict = verify_chain(workers=workers)
        if not verdict.intact:
            self.stderr.write(
                f"Audit ledger BROKEN at event #{verdict.broken_at}: {verdict.reason}. "
                f"{verdict.checked} events before it are intact."
            )
            raise SystemExit(BROKEN)
        rewritten = check_checkpoints(verdict)
        if rewritten:
            self.stderr.write(f"Audit ledger BROKEN: {rewritten}.")
            raise SystemExit(BROKEN)
        finding = check_external_checkpoints(verdict, external[1]) if external else None
        if finding is not None and finding.kind == REWRITTEN:
            self.stderr.write(f"Audit ledger BROKEN: {finding.message} (from {external[0]}).")
            raise SystemExit(BROKEN)
        if finding is not None and finding.kind == BEHIND:
            self.stderr.write(
                f"Audit ledger BEHIND ITS CHECKPOINT: {finding.message} (from {external[0]}). "
                f"The {verdict.checked} events it holds are intact."
            )
            raise SystemExit(BEHIND_CHECKPOINT)
        if verdict.checked == 0:
            self.stdout.write("Audit ledger intact: no events sealed yet.")
        else:
            self.stdout.write(
                f"Audit ledger intact: {verdict.checked} events, head #{verdict.head_sequence} "
                f"{verdict.head_hash}."
            )
        if finding is not None and finding.last is not None:
            last = finding.last
            after = (verdict.head_sequence or 0) - last["sequence"]
            self.stdout.write(
                f"Last external checkpoint #{last['sequence']} ({last['at']}) matches the "
                f"ledger; {after} events sealed after it ({external[0]})."
            )
        self._unsealed()

    def _external(self, path: Path | None) -> tuple[Path, list[dict]] | None:
        """(file, checkpoints) kept outside the database, or None when there is none to read."""
        explicit = path is not None
        path = path or sink_file()
        if path is None:
            return None
        if not path.is_file():
            if explicit:
                raise CommandError(f"--checkpoints: {path} is not a readable file.")
            self.stdout.write(f"No external checkpoints read: {path} does not exist yet.")
            return None
        try:
            return path, read_sink(path)
        except (OSError, ValueError) as error:
            raise CommandError(f"Checkpoints cannot be read: {error}.") from None

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
