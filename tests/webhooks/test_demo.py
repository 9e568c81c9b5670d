"""The demo senders: documented secrets unless the environment names others; seeding twice is
harmless."""

import base64

from portal.webhooks import demo
from portal.webhooks.models import WebhookSecret, WebhookSource


def test_seed_creates_the_three_sources_with_documented_demo_secrets(db, monkeypatch):
    for name in demo.SOURCES:
        monkeypatch.delenv(f"WEBHOOK_SECRET_{name.upper()}", raising=False)

    demo.seed()
    demo.seed()

    assert sorted(WebhookSource.objects.values_list("name", flat=True)) == [
        "carrier",
        "n8n",
        "supplier",
    ]
    carrier = WebhookSecret.objects.get(source__name="carrier")
    assert carrier.secret == "whsec_dG9sbGdhdGUtZGVtby1jYXJyaWVyLXdlYmhvb2stc2VjcmV0"
    assert base64.b64decode(carrier.secret[6:]) == b"tollgate-demo-carrier-webhook-secret"
    assert WebhookSecret.objects.count() == 3


def test_secret_from_the_environment_wins(db, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET_CARRIER", "whsec_cHJvZHVjdGlvbi1jYXJyaWVy")

    demo.seed()

    assert WebhookSecret.objects.get(source__name="carrier").secret.endswith(
        "cHJvZHVjdGlvbi1jYXJyaWVy"
    )
