"""The installation's Ed25519 key that signs audit export manifests, and its published keys.

The private key comes from AUDIT_SIGNING_KEY (PEM, or base64 of the raw 32-byte seed) or the
file AUDIT_SIGNING_KEY_FILE; with DEBUG on and neither set, one is generated into var/ (like
the development SECRET_KEY) so every local process signs with the same key. It is never
logged or rendered: only its public half leaves this module.

Retired public keys are listed in AUDIT_PREVIOUS_PUBLIC_KEYS (`<base64>@<YYYY-MM-DD>`, comma
separated) rather than in a table: a key is part of the installation's configuration, set
together with the new private key in one place, and the published list must not depend on
anyone being able to edit rows in the database the signatures are meant to vouch for.

A key is named by its id: the first 16 hex digits of the SHA-256 of its 32 raw bytes, the same
rule the standalone verifier applies.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.audit import verify_export

ALGORITHM = "Ed25519"
DEVELOPMENT_KEY_FILE = "audit-signing-key.pem"


@dataclass(frozen=True)
class PublicKey:
    raw: bytes
    retired_on: date | None = None

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @property
    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


def key_id(raw: bytes) -> str:
    return verify_export.key_id(raw)


def _parse_private(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise ImproperlyConfigured("AUDIT_SIGNING_KEY is not a readable PEM key.") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be an Ed25519 key.")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != 32:
        raise ImproperlyConfigured(
            "AUDIT_SIGNING_KEY must be a PEM Ed25519 key or base64 of a 32-byte seed."
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def _development_key() -> str:
    path = Path(settings.VAR_DIR) / DEVELOPMENT_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
    return path.read_text()


def _configured_text() -> str:
    if settings.AUDIT_SIGNING_KEY:
        return settings.AUDIT_SIGNING_KEY
    if settings.AUDIT_SIGNING_KEY_FILE:
        try:
            return Path(settings.AUDIT_SIGNING_KEY_FILE).read_text()
        except OSError:
            raise ImproperlyConfigured(
                "AUDIT_SIGNING_KEY_FILE names a file that cannot be read."
            ) from None
    if settings.DEBUG:
        return _development_key()
    raise ImproperlyConfigured(
        "No audit signing key: set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE, so exports "
        "can be signed."
    )


@lru_cache(maxsize=4)
def _private_key(text: str) -> Ed25519PrivateKey:
    return _parse_private(text)


def _signing_key() -> Ed25519PrivateKey:
    return _private_key(_configured_text())


def current_key() -> PublicKey:
    """The public half of the key that signs new exports (ImproperlyConfigured if none)."""
    raw = (
        _signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return PublicKey(raw)


def previous_keys() -> list[PublicKey]:
    """Retired public keys, still published so the exports they signed still verify."""
    keys = []
    for item in settings.AUDIT_PREVIOUS_PUBLIC_KEYS:
        text, _, retired = item.partition("@")
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            retired_on = date.fromisoformat(retired.strip()) if retired.strip() else None
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(
                f"AUDIT_PREVIOUS_PUBLIC_KEYS: {item[:60]!r} is not <base64 key>@<YYYY-MM-DD>."
            ) from None
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"AUDIT_PREVIOUS_PUBLIC_KEYS: {item[:60]!r} is not a 32-byte Ed25519 key."
            )
        keys.append(PublicKey(raw, retired_on))
    return keys


def sign_manifest(manifest: dict) -> dict:
    """The manifest with its `signature`: Ed25519 over the rest of it in canonical form."""
    key = _signing_key()
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    value = key.sign(verify_export.signed_bytes(unsigned))
    return {
        **unsigned,
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": current_key().key_id,
            "value": base64.b64encode(value).decode(),
        },
    }


def published() -> dict:
    """The document /.well-known/tollgate-audit-key serves."""
    current = current_key()
    return {
        "algorithm": ALGORITHM,
        "key_id_rule": "first 16 hex digits of the SHA-256 of the 32-byte raw public key",
        "current": {"key_id": current.key_id, "public_key": current.base64},
        "previous": [
            {
                "key_id": key.key_id,
                "public_key": key.base64,
                "retired_on": key.retired_on.isoformat() if key.retired_on else None,
            }
            for key in previous_keys()
        ],
    }
