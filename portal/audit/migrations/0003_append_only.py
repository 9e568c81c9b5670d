"""The database refuses UPDATE, DELETE and TRUNCATE on the audit ledger."""

from django.db import migrations


def install(apps, schema_editor):
    from portal.audit import triggers

    triggers.install_v1(schema_editor.connection)


def remove(apps, schema_editor):
    from portal.audit import triggers

    triggers.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_hash_chain")]

    operations = [migrations.RunPython(install, remove)]
