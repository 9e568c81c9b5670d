"""Each request's last decision time, stored on the request for the list's "Decided" order.

The list used to sort by a subquery over decisions per row, which costs every row a person may
see; the column is kept by the services that record decisions, filled here from the decisions
already made. Its index is made on PostgreSQL only, as in 0008 (SQLite cannot say NULLS LAST
in an index); the model state is the same on both.
"""

from django.db import migrations, models
from django.db.models import F

FILL = """
UPDATE approvals_approvalrequest
SET last_decided_at = last.at
FROM (
    SELECT request_id, max(at) AS at FROM approvals_decision GROUP BY request_id
) AS last
WHERE approvals_approvalrequest.id = last.request_id
"""


class AddIndexOnPostgres(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0008_list_order_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvalrequest",
            name="last_decided_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        # UPDATE ... FROM is understood by PostgreSQL and by SQLite (3.33 and later).
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
        AddIndexOnPostgres(
            model_name="approvalrequest",
            index=models.Index(
                F("last_decided_at").desc(nulls_last=True),
                F("id").desc(),
                name="request_last_decided",
            ),
        ),
    ]
