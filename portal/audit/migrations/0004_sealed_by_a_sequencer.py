"""Events arrive unsealed and a sequencer seals them: the seal columns may be empty until then.

Existing events keep their sequence numbers and hashes (they were sealed when appended, so
`sealed_at` stays empty for them) and the chain carries over unchanged. The triggers are
replaced by a form that lets exactly one UPDATE through: the seal of an unsealed event.

`txid` gets its default (the inserting transaction's id) with `SET DEFAULT`, which applies to
new rows only: adding the column with a volatile default would rewrite every existing event.
"""

from django.db import migrations, models

import portal.audit.models


def remove_triggers(apps, schema_editor):
    from portal.audit import triggers

    triggers.remove(schema_editor.connection)


def install_triggers(apps, schema_editor):
    from portal.audit import triggers

    triggers.install(schema_editor.connection)


def install_v1_triggers(apps, schema_editor):
    from portal.audit import triggers

    triggers.install_v1(schema_editor.connection)


def add_txid(apps, schema_editor):
    schema_editor.execute("ALTER TABLE audit_auditevent ADD COLUMN txid bigint NULL")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE audit_auditevent "
            "ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )


def drop_txid(apps, schema_editor):
    schema_editor.execute("ALTER TABLE audit_auditevent DROP COLUMN txid")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only")]

    operations = [
        migrations.RunPython(remove_triggers, install_v1_triggers),
        migrations.AddField("auditevent", "sealed_at", models.DateTimeField(null=True)),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    "auditevent",
                    "txid",
                    models.BigIntegerField(
                        db_default=portal.audit.models.CurrentTransactionId(),
                        editable=False,
                        null=True,
                    ),
                )
            ],
            database_operations=[migrations.RunPython(add_txid, drop_txid)],
        ),
        migrations.AlterField(
            "auditevent", "hash", models.CharField(max_length=64, null=True, unique=True)
        ),
        migrations.AlterField(
            "auditevent", "prev_hash", models.CharField(blank=True, max_length=64, null=True)
        ),
        migrations.AlterField(
            "auditevent", "sequence", models.PositiveBigIntegerField(null=True, unique=True)
        ),
        migrations.AddIndex(
            "auditevent",
            models.Index(
                condition=models.Q(("sequence__isnull", True)),
                fields=["txid", "id"],
                name="audit_unsealed",
            ),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
