"""NAT64 addresses are judged by the IPv4 address they reach.

64:ff9b::/96 (RFC 6052) and 64:ff9b:1::/48 (RFC 8215) carry an IPv4 address in their last 32
bits; a NAT64 gateway on the path delivers the packet to that address. Python calls them
global (or reserved, depending on its version), so the filter unwraps them itself.
"""

import pytest

from portal.webhooks import delivery


@pytest.fixture(autouse=True)
def _no_allow_list(settings):
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = []
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = False


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b::c0a8:101", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("64:ff9b:1::7f00:1", "loopback"),
        ("64:ff9b:1:2:3:4:a00:1", "private"),
    ],
)
def test_a_nat64_address_of_an_inside_host_is_refused(address, reason):
    with pytest.raises(delivery.TargetRefused, match=f"a {reason} address"):
        delivery.check_target(f"https://[{address}]/hook")


@pytest.mark.parametrize("address", ["64:ff9b::5db8:d70e", "64:ff9b:1::5db8:d70e"])
def test_a_nat64_address_of_a_public_host_is_accepted(address):
    target = delivery.check_target(f"https://[{address}]/hook")

    assert target.address == address
