"""Seal the ledger: sequence numbers and a hash chain, filled in for events already recorded."""

from django.db import migrations, models
from django.utils import timezone


def seal_existing(apps, schema_editor):
    from portal.audit import chain

    AuditEvent = apps.get_model("audit", "AuditEvent")
    previous = chain.GENESIS
    for number, event in enumerate(AuditEvent.objects.order_by("id").iterator(), start=1):
        event.sequence, event.prev_hash = number, previous
        event.hash = chain.seal(chain.payload(event))
        AuditEvent.objects.filter(pk=event.pk).update(
            sequence=event.sequence, prev_hash=event.prev_hash, hash=event.hash
        )
        previous = event.hash


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("sites", "0003_site_business_hours"),
    ]

    operations = [
        migrations.RenameField("auditevent", "object_label", "object_reference"),
        migrations.AddField(
            "auditevent", "sequence", models.PositiveBigIntegerField(null=True)
        ),
        migrations.AddField(
            "auditevent", "prev_hash", models.CharField(blank=True, default="", max_length=64)
        ),
        migrations.AddField(
            "auditevent", "hash", models.CharField(default="", max_length=64)
        ),
        migrations.RunPython(seal_existing, migrations.RunPython.noop),
        migrations.AlterField(
            "auditevent", "sequence", models.PositiveBigIntegerField(unique=True)
        ),
        migrations.AlterField(
            "auditevent", "prev_hash", models.CharField(blank=True, max_length=64)
        ),
        migrations.AlterField("auditevent", "hash", models.CharField(max_length=64, unique=True)),
        migrations.AlterModelOptions("auditevent", {"ordering": ["sequence"]}),
        migrations.RemoveIndex("auditevent", "audit_object"),
        migrations.AddIndex(
            "auditevent",
            models.Index(fields=["object_type", "object_id", "sequence"], name="audit_object"),
        ),
        migrations.AddIndex(
            "auditevent", models.Index(fields=["site", "sequence"], name="audit_site")
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sequence", models.PositiveBigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("at", models.DateTimeField(default=timezone.now)),
                ("sink", models.CharField(blank=True, max_length=200)),
                ("delivered", models.BooleanField(default=False)),
                ("error", models.TextField(blank=True)),
            ],
            options={"ordering": ["-sequence"]},
        ),
    ]
