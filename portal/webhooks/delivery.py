"""The HTTP transport of outbound webhooks and the rule on which hosts it may reach.

A subscription's URL could point anywhere, including into Tollgate's own network (a database, a
metadata service, an admin port). So a target is refused when its host resolves to a loopback,
private, link-local, multicast, reserved or unspecified address, unless an administrator named
the host in `WEBHOOK_OUTBOUND_ALLOWED_HOSTS`. The check runs when a subscription is saved and
again before every POST, against the addresses the name resolves to at that moment, and the
connection goes to exactly the address that was checked: a name that resolves to a public
address when saved and to a private one later (DNS rebinding) is still refused.

Only the standard library is used; redirects are not followed, since a redirect could lead
anywhere the check would have refused.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class TargetRefused(Exception):
    """The URL may not be called; the message says why."""


class TransportError(Exception):
    """The POST did not get an HTTP answer; the message says why, never with a secret."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    duration_ms: int


def check_target(url: str) -> Target:
    """Resolve `url` and return where to connect, or refuse it with the reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("The URL must start with https://.")
    if parts.scheme == "http" and not settings.WEBHOOK_OUTBOUND_ALLOW_HTTP:
        raise TargetRefused("Plain http is not allowed here; use https://.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused("The URL must not carry a user name or password.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("The URL's port is not a number between 0 and 65535.") from None
    host = parts.hostname
    addresses = _resolve(host, port)
    if host.lower() not in _allowed_hosts():
        for address in addresses:
            reason = _forbidden(ipaddress.ip_address(address))
            if reason:
                raise TargetRefused(
                    f"{host} resolves to {address}, a {reason} address; only public addresses "
                    "are reached unless the host is in WEBHOOK_OUTBOUND_ALLOWED_HOSTS."
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


def _allowed_hosts() -> set[str]:
    return {host.lower() for host in settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS}


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise TargetRefused(f"{host} does not resolve: {error}.") from None
    # An IPv6 scope id ("fe80::1%eth0") is not part of the address itself.
    return list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))


# NAT64 prefixes (RFC 6052's well-known one and RFC 8215's local-use one): a gateway delivers
# the packet to the IPv4 address in the last 32 bits.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _forbidden(address) -> str:
    # An IPv6 address that carries an IPv4 one (::ffff:10.0.0.1, 6to4's 2002:0a00:0001::, or
    # NAT64's 64:ff9b::a00:1) reaches that IPv4 address, so that is the one to judge.
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or _nat64(address) or address
    for reason, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return reason
    return "" if address.is_global else "non-public"


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url` after checking it; raises TargetRefused or TransportError."""
    target = check_target(url)
    timeout = settings.WEBHOOK_OUTBOUND_TIMEOUT_SECONDS
    connection = _connection(target, timeout)
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Host": _host_header(target),
                "Content-Type": "application/json",
                "User-Agent": "Tollgate-Webhooks/1",
            },
        )
        answer = connection.getresponse()
        # A receiver has nothing to tell us beyond its status; read a little so the connection
        # closes cleanly, and never keep what it sent.
        answer.read(1024)
    except (OSError, http.client.HTTPException) as error:
        raise TransportError(_describe(error, timeout)) from None
    finally:
        connection.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    return Response(answer.status, answer.reason or "", duration_ms)


def _describe(error: Exception, timeout: float) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return f"No answer within {timeout:g} seconds."
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}."
    if isinstance(error, ConnectionRefusedError):
        return "Connection refused."
    return f"{type(error).__name__}: {error}"


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target, timeout)
    return http.client.HTTPConnection(target.address, target.port, timeout=timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address, with the certificate verified for the URL's host name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
