"""`manage.py sync_odoo`: pull what changed in Odoo now, as the beat job does every minute."""

from django.core.management.base import BaseCommand, CommandError

from portal.integrations.odoo import mapping, sync
from portal.integrations.odoo.errors import OdooError


class Command(BaseCommand):
    help = "Pull changed Odoo records into Tollgate (requests and exception cases)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--model",
            action="append",
            choices=[handler.model for handler in mapping.HANDLERS],
            help="Only this Odoo model (repeat for several). Default: all.",
        )
        parser.add_argument("--batch-size", type=int, help="Records per search_read call.")

    def handle(self, *args, model=None, batch_size=None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            results = sync.sync_all(batch_size=batch_size, models=model)
        except OdooError as error:
            raise CommandError(f"Odoo could not be read: {error}") from None
        for name, result in results.items():
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items()))
            self.stdout.write(
                f"{name}: read {result.fetched} in {result.batches} batch(es), "
                f"handled {result.handled}, already seen {result.skipped}"
                + (f" ({outcomes})" if outcomes else "")
            )
            for problem in result.problems:
                self.stderr.write(f"  not mapped: {problem}")
