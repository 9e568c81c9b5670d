"""The demo company's webhook senders: carrier, supplier and n8n; safe to run again.

Each source signs with `WEBHOOK_SECRET_<SOURCE>` when that is set. Otherwise it gets a DEMO
secret, published here and in the README so that anyone can send demo events; never use one
in production:

    carrier   whsec_dG9sbGdhdGUtZGVtby1jYXJyaWVyLXdlYmhvb2stc2VjcmV0
    supplier  whsec_dG9sbGdhdGUtZGVtby1zdXBwbGllci13ZWJob29rLXNlY3JldA==
    n8n       whsec_dG9sbGdhdGUtZGVtby1uOG4td2ViaG9vay1zZWNyZXQ=
"""

import base64
import os

from portal.webhooks import services
from portal.webhooks.models import WebhookSource

SOURCES = ("carrier", "supplier", "n8n")


def demo_secret(source: str) -> str:
    """The published demo secret of `source`: base64 of a fixed, guessable phrase."""
    phrase = f"tollgate-demo-{source}-webhook-secret".encode()
    return "whsec_" + base64.b64encode(phrase).decode()


def secret_for(source: str) -> str:
    return os.environ.get(f"WEBHOOK_SECRET_{source.upper()}") or demo_secret(source)


def seed() -> None:
    """Create the demo sources and give each its secret, adding only what is missing."""
    for name in SOURCES:
        source = WebhookSource.objects.filter(name=name).first()
        source = source or services.webhook_source_create(actor=None, name=name)
        secret = secret_for(name)
        if not source.secrets.filter(secret=secret, retired_at=None).exists():
            services.webhook_secret_add(actor=None, source=source, secret=secret)
