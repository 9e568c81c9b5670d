"""Train the suggested-resolution models now and report each one's accuracy on held-out cases."""

from django.core.management.base import BaseCommand

from exceptions import suggestions
from exceptions.models import CaseKind


class Command(BaseCommand):
    help = (
        "Train the suggested-resolution model of every kind of case from the resolved cases, "
        "and print how often each is right on the cases held out of its training."
    )

    def handle(self, *args, **options):
        for trained in suggestions.train_all():
            name = CaseKind(trained.kind).label
            model = trained.model
            if model is None:
                self.stdout.write(f"{name}: no model ({trained.reason}).")
                continue
            right = round(model.accuracy * model.tested_on)
            self.stdout.write(
                f"{name}: {model.accuracy:.0%} right on {model.tested_on} held-out cases "
                f"({right} of {model.tested_on}; trained on {model.trained_on})."
            )
