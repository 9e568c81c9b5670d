import django.db.models.deletion
from django.db import migrations, models

# Each tier takes its request's site (a request never changes site).
COPY_SITE = """
UPDATE approvals_approvalstep SET site_id = (
    SELECT r.site_id FROM approvals_approvalrequest r WHERE r.id = approvals_approvalstep.request_id
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0005_dashboard_and_inbox_indexes"),
        ("sites", "0003_site_business_hours"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvalstep",
            name="site",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="sites.site",
            ),
        ),
        migrations.RunSQL(COPY_SITE, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="approvalstep",
            name="site",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="sites.site",
            ),
        ),
        migrations.RemoveIndex(model_name="approvalstep", name="step_activated"),
        migrations.RemoveIndex(model_name="approvalstep", name="step_active"),
        migrations.AddIndex(
            model_name="approvalstep",
            index=models.Index(
                fields=["site", "activated_at", "state", "due_at", "completed_at", "escalated_at"],
                name="step_activated",
            ),
        ),
        migrations.AddIndex(
            model_name="approvalstep",
            index=models.Index(
                condition=models.Q(("state", "active")),
                fields=["site", "request", "position", "activated_at", "due_at"],
                name="step_active",
            ),
        ),
    ]
