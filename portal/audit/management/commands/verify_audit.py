"""`manage.py verify_audit`: recompute the ledger's hash chain; exit 1 if anything changed."""

from django.core.management.base import BaseCommand

from portal.audit.verify import check_checkpoints, verify_chain


class Command(BaseCommand):
    help = "Verify the audit ledger's hash chain (and its checkpoints). Exit 0 intact, 1 broken."

    def handle(self, *args, **options):
        verdict = verify_chain()
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
