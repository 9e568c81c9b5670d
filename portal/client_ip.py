"""The address a request came from, for login lockouts.

Behind N trusted proxies each appends the address it received the request from to
X-Forwarded-For, so the client is the Nth entry from the right; entries further left were
written by the client itself and cannot be trusted.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies == 0:
        return remote
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    if len(forwarded) < proxies:
        # The request did not pass through every proxy; its own peer is all we know.
        return remote
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
