"""Connection settings for the Odoo connector, read from Django settings.

Only the four ODOO_* values of DESIGN.md are required in settings; the others have defaults
here so that the connector works before settings.py names them.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PROTOCOLS = ("auto", "jsonrpc", "json2")
DEFAULT_PROTOCOL = "auto"
DEFAULT_TIMEOUT = 30.0
# The first Odoo major that serves JSON-2; `auto` picks it from here on.
JSON2_SINCE = 19


@dataclass(frozen=True)
class OdooSettings:
    """Where and as whom the connector reaches Odoo."""

    url: str
    db: str
    login: str
    api_key: str = field(repr=False)
    protocol: str = DEFAULT_PROTOCOL
    timeout: float = DEFAULT_TIMEOUT
    version: str | None = None

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ImproperlyConfigured(
                f"ODOO_PROTOCOL must be one of {', '.join(PROTOCOLS)}; got {self.protocol!r}."
            )
        if not self.api_key:
            raise ImproperlyConfigured("ODOO_API_KEY is not set.")
        if self.timeout <= 0:
            raise ImproperlyConfigured(f"ODOO_TIMEOUT must be positive; got {self.timeout}.")
        self.endpoint  # noqa: B018 -- validates the URL now rather than on the first call

    @classmethod
    def from_django(cls) -> "OdooSettings":
        """Read the ODOO_* settings."""
        return cls(
            url=settings.ODOO_URL,
            db=settings.ODOO_DB,
            login=settings.ODOO_LOGIN,
            api_key=settings.ODOO_API_KEY,
            protocol=getattr(settings, "ODOO_PROTOCOL", DEFAULT_PROTOCOL) or DEFAULT_PROTOCOL,
            timeout=float(getattr(settings, "ODOO_TIMEOUT", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT),
            version=getattr(settings, "ODOO_VERSION", None) or None,
        )

    @property
    def endpoint(self) -> tuple[str, str, int]:
        """The scheme, host and port of ODOO_URL."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(f"ODOO_URL must be an http(s) URL; got {self.url!r}.")
        if parts.path.strip("/") or parts.query or parts.username:
            # OdooRPC cannot send to a path prefix, so neither backend accepts one.
            raise ImproperlyConfigured("ODOO_URL must be scheme://host[:port] with no path.")
        default_port = 443 if parts.scheme == "https" else 80
        return parts.scheme, parts.hostname, parts.port or default_port

    @property
    def base_url(self) -> str:
        """ODOO_URL without a trailing slash."""
        scheme, host, port = self.endpoint
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}"


def major_version(version: str) -> int:
    """The major number of an Odoo version string ("17.0", "saas~17.2", "18.0+e-20240101")."""
    text = version.split("-", 1)[0].removeprefix("saas~")
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    if not digits:
        raise ValueError(f"not an Odoo version: {version!r}")
    return int(digits)
