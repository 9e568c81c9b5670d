"""Outbound targets written to slip past the allow-list are refused, however they are spelled.

Addresses are judged after resolution, so every spelling of a loopback or private address
(decimal, octal, hex, IPv4 inside IPv6, a DNS name) is refused before anything is sent.
"""

import socket

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from portal.webhooks import delivery, outbound
from portal.webhooks.models import OutboundDelivery, WebhookSubscription

PUBLIC = "93.184.215.14"


@pytest.fixture
def no_allow_list(settings):
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = []
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = False


@pytest.fixture
def dns(monkeypatch):
    """Names resolve as the test says; anything else as usual."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [
            (family[":" in address], socket.SOCK_STREAM, 6, "", (address, port))
            for address in answers[host]
        ]

    monkeypatch.setattr(delivery.socket, "getaddrinfo", getaddrinfo)
    return answers


def _subscribe(url: str):
    return outbound.subscription_create(
        actor=None, name="target", url=url, event_types=["approval.decided"]
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[::ffff:7f00:1]/hook", "loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://[::127.0.0.1]/hook", "reserved"),
        ("https://[::]/hook", "unspecified"),
        ("https://[fd00::1]/hook", "private"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://2130706433/hook", "loopback"),
        ("https://0177.0.0.1/hook", "loopback"),
        ("https://0x7f.1/hook", "loopback"),
        ("https://127.1/hook", "loopback"),
        ("https://0/hook", "unspecified"),
        ("https://100.64.0.1/hook", "non-public"),
        # 6to4 addresses carry an IPv4 address and reach it: 2002:7f00:1:: is 127.0.0.1.
        ("https://[2002:7f00:1::]/hook", "loopback"),
        ("https://[2002:a00:1::1]/hook", "private"),
        ("https://[2002:a9fe:a9fe::]/latest", "link-local"),
    ],
)
def test_every_spelling_of_an_inside_address_is_refused(db, no_allow_list, url, reason):
    with pytest.raises(ValidationError) as refused:
        _subscribe(url)

    assert f"a {reason} address" in str(refused.value.message_dict["url"])
    assert not WebhookSubscription.objects.exists()


def test_a_6to4_address_of_a_public_host_is_accepted(db, no_allow_list):
    subscription, _ = _subscribe("https://[2002:5db8:d70e::1]/hook")
    assert subscription.pk is not None


def test_a_name_resolving_to_a_private_address_is_refused(db, no_allow_list, dns):
    dns["hooks.example.net"] = ["10.0.0.7"]

    with pytest.raises(ValidationError, match=r"10\.0\.0\.7, a private address"):
        _subscribe("https://hooks.example.net/hook")


def test_a_name_with_one_private_address_among_public_ones_is_refused(db, no_allow_list, dns):
    # The connection could go to any address of the name, so every one must be public.
    dns["hooks.example.net"] = [PUBLIC, "::1"]

    with pytest.raises(ValidationError, match=r"::1, a loopback address"):
        _subscribe("https://hooks.example.net/hook")


def test_the_connection_goes_to_the_address_that_was_checked(no_allow_list, dns):
    dns["hooks.example.net"] = [PUBLIC]

    target = delivery.check_target("https://hooks.example.net:8443/in?x=1")

    assert (target.address, target.port, target.path) == (PUBLIC, 8443, "/in?x=1")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user@" + PUBLIC + "/hook", "password"),
        ("https://" + PUBLIC + ":99999/hook", "port"),
        ("file:///etc/passwd", "https://"),
        ("gopher://" + PUBLIC + "/", "https://"),
    ],
)
def test_userinfo_bad_ports_and_other_schemes_are_refused(no_allow_list, url, reason):
    with pytest.raises(delivery.TargetRefused, match=reason):
        delivery.check_target(url)


def test_a_path_http_cannot_send_is_a_recorded_failure_not_a_crash(db, settings):
    # Such a URL cannot be saved through the services; were one in the table, the attempt
    # must still be recorded and retried later, not roll back unrecorded on every sweep.
    settings.WEBHOOK_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_OUTBOUND_ALLOW_HTTP = True
    subscription, _ = _subscribe("http://127.0.0.1:9/hook")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(url="http://127.0.0.1:9/a b")
    with transaction.atomic():
        outbound.publish("approval.decided", data={"reference": "AR-000001"})
    row = OutboundDelivery.objects.get()

    outbound.delivery_attempt(delivery_id=row.pk)

    row = OutboundDelivery.objects.get(pk=row.pk)
    assert row.state == "failed" and row.attempts == 1
    assert "InvalidURL" in row.last_error
    assert row.log.count() == 1
