from django.db import migrations, models


class Migration(migrations.Migration):
    """The open cases by site and queue, for the queue page's ranking and summary."""

    dependencies = [
        ("exceptions", "0006_resolution_codes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="exceptioncase",
            index=models.Index(
                condition=models.Q(("state__in", ["new", "assigned", "in_progress"])),
                fields=["site", "queue", "due_at", "detected_at"],
                name="case_open_at_site",
            ),
        ),
    ]
