"""Indexes in the requests list's default order, newest first with undated drafts last.

SQLite cannot say NULLS LAST in an index (and gains nothing from these), so the indexes are
made on PostgreSQL only; the model state is the same on both.
"""

from django.db import migrations, models
from django.db.models import F


class AddIndexOnPostgres(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0007_odoo_author_and_attachments"),
    ]

    operations = [
        AddIndexOnPostgres(
            model_name="approvalrequest",
            index=models.Index(
                F("site"),
                F("submitted_at").desc(nulls_last=True),
                F("id").desc(),
                name="request_site_recent",
            ),
        ),
        AddIndexOnPostgres(
            model_name="approvalrequest",
            index=models.Index(
                F("submitted_at").desc(nulls_last=True), F("id").desc(), name="request_recent"
            ),
        ),
        AddIndexOnPostgres(
            model_name="approvalrequest",
            index=models.Index(
                F("requester"),
                F("submitted_at").desc(nulls_last=True),
                F("id").desc(),
                name="request_requester_recent",
            ),
        ),
    ]
