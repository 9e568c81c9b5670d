"""`manage.py verify_audit`: recompute the ledger's hash chain; exit 1 if anything changed."""

import os

from django.core.management.base import BaseCommand, CommandError

from portal.audit.verify import check_checkpoints, verify_chain


class Command(BaseCommand):
    help = "Verify the audit ledger's hash chain (and its checkpoints). Exit 0 intact, 1 broken."

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
            self.stdout.write("Audit ledger intact: no events yet.")
            return
        self.stdout.write(
            f"Audit ledger intact: {verdict.checked} events, head #{verdict.head_sequence} "
            f"{verdict.head_hash}."
        )
