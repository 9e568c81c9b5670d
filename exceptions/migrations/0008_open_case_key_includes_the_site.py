"""One open case per event *and site*: the same key at another site is another site's event,
and must never join (or be refused by) this site's case."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0007_open_cases_by_site")]

    operations = [
        migrations.RemoveConstraint(
            model_name="exceptioncase",
            name="one_open_case_per_event",
        ),
        migrations.AddConstraint(
            model_name="exceptioncase",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state__in", ["new", "assigned", "in_progress"])),
                fields=("site", "dedupe_key"),
                name="one_open_case_per_event_and_site",
            ),
        ),
    ]
