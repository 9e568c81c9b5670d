"""Keep the Odoo API key out of logs and error text.

OdooRPC logs every JSON request at DEBUG, and for `/jsonrpc` the password travels inside
`params.args`, which its own masking (top-level `params.password` only) does not reach. Server
error payloads and transport errors can also echo what was sent. So every secret the connector
holds is registered here, and everything the connector turns into text passes through `redact`.

The registry is process-wide on purpose: it only ever holds configured secrets, it is filled
before any request is made, and a filter in a logging handler must find it without a client.
"""

import json
import logging
import traceback
from urllib.parse import quote

from django.conf import settings

REDACTED = "[redacted]"
CONNECTOR_LOGGER = "portal.integrations.odoo"
# Logger filters see only records created on that exact logger, not those propagated from its
# children, so OdooRPC's module logger is named as well as its package logger.
GUARDED_LOGGERS = ("odoorpc", "odoorpc.rpc.jsonrpclib", CONNECTOR_LOGGER)

# Replaced, never mutated, so that a thread reading it never sees it change mid-iteration.
# Longest first, so that a secret containing another one is replaced whole.
_secrets: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Add a secret, and the forms it takes inside JSON and URLs, to the redaction list."""
    global _secrets
    if not value or value in _secrets:
        return
    forms = {value, json.dumps(value)[1:-1], quote(value, safe="")}
    _secrets = tuple(sorted(forms.union(_secrets), key=len, reverse=True))


def _known_secrets() -> tuple[str, ...]:
    if settings.configured:
        register_secret(getattr(settings, "ODOO_API_KEY", None))
    return _secrets


def redact(text: str) -> str:
    """Return `text` with every registered secret replaced by a marker."""
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def contains_secret(text: str) -> bool:
    """Tell whether `text` holds a registered secret."""
    return any(secret in text for secret in _known_secrets())


class RedactSecretsFilter(logging.Filter):
    """Rewrite a log record so that no registered secret survives in its text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._scrub(record)
        except Exception:  # a filter must never stop the record or crash the caller
            record.msg, record.args, record.exc_info = REDACTED, None, None
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if contains_secret(message):
            record.msg, record.args = redact(message), None
        exc_text = record.exc_text
        if record.exc_info and not exc_text:
            exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if exc_text and contains_secret(exc_text):
            # Handlers would format exc_info afresh; the redacted text is all they get.
            record.exc_text, record.exc_info = redact(exc_text), None
        if record.stack_info and contains_secret(record.stack_info):
            record.stack_info = redact(record.stack_info)


def guard_loggers() -> None:
    """Attach the redaction filter to OdooRPC's loggers and the connector's (idempotent)."""
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter())
