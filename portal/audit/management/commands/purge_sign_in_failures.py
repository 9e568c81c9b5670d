"""Delete the failed-sign-in detail older than SIGN_IN_FAILURE_RETENTION_DAYS.

Beat runs the same purge daily (`accounts.purge_sign_in_failures`); this is for an operator,
or a deployment without beat. The ledger's summaries are not touched: they are never deleted.
"""

from django.core.management.base import BaseCommand

from portal.accounts import purge_sign_in_failures


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        deleted = purge_sign_in_failures()
        self.stdout.write(f"Deleted {deleted} failed sign-in record(s).")
