from django.db import migrations, models


class Migration(migrations.Migration):
    """An index on the grant rows by site and role: reading who holds a role at one site (the
    request page's pending tiers) walks that site's rows of each role directly."""

    dependencies = [
        ("sites", "0003_site_business_hours"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="siteuserobjectpermission",
            index=models.Index(fields=["content_object", "permission"], name="site_grant_by_site"),
        ),
    ]
