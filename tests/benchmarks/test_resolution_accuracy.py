"""How often the suggested resolutions are right, on the demo's resolved cases.

The demo company (seed_demo, with its ninety days of history) is seeded once into a database of
its own beside the benchmark's, and every kind's model is trained as the nightly job trains it:
on three quarters of the resolved cases, scored on the quarter held out. The accuracy is a
figure to read, not a timing or a target: it is printed and tabled without MET or MISSED.
"""

import io

from django.core.management import call_command
from django.db import connection

from exceptions import suggestions
from exceptions.models import CaseKind
from tests.benchmarks.harness import create_database_if_missing, use_database

SECTION = "suggested resolutions (demo cases)"


def test_suggestion_accuracy_on_held_out_demo_cases(django_db_blocker, results):
    demo = f"{connection.settings_dict['NAME']}_demo"
    with django_db_blocker.unblock():
        create_database_if_missing(demo)
        with use_database(demo):
            call_command("migrate", interactive=False, verbosity=0)
            call_command("seed_demo", force=True, stdout=io.StringIO())
            trained = suggestions.train_all()
    models = [each.model for each in trained if each.model is not None]
    assert models, "the demo's history gave no kind of case enough resolved cases to learn"
    for model in models:
        results.add(
            SECTION,
            f"{CaseKind(model.kind).label}: right on {model.tested_on} held-out cases",
            float(model.accuracy * 100),
            "%",
            note=f"trained on {model.trained_on} cases",
        )
