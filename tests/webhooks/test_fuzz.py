"""Hostile input, correctly signed: whatever a source sends, the endpoint never fails.

Every body here carries a valid signature from the source's demo secret, so it passes
verification and reaches parsing, the schema and processing (Celery runs in process). The
answer is 202 (stored and processed without error), 400 or 422 (kept as a rejected delivery,
no case touched), or 413 for a body over the limit; never a 5xx.
"""

import json
import uuid

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from exceptions.models import ExceptionCase
from portal.webhooks import demo, schemas
from portal.webhooks.models import DeliveryStatus, InboundDelivery
from tests.webhooks.conftest import post, signed_headers

pytestmark = pytest.mark.usefixtures("sources")

LIMIT = 256 * 1024
MAX_DEPTH_PARSED = 5_000

# Characters that have broken JSON stores and parsers before: NUL, unpaired surrogates, a
# right-to-left override, a byte-order mark, a non-character, astral and combining characters.
TRICKY = ["\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\uffff", "😀", "e\u0301", "\\", '"']

texts = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40),
    st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=8).map("".join),
    st.tuples(st.sampled_from(["x", "é", "😀", "\x00"]), st.integers(101, 60_000)).map(
        lambda pair: pair[0] * pair[1]
    ),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, -0.0, 1e308, -1e-308, 2**63, -(2**63) - 1]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(TRICKY), children, max_size=4)
    ),
    max_leaves=12,
)

TEMPLATES = {
    "carrier": {
        "type": st.sampled_from(schemas.CARRIER_TYPES),
        "tracking_number": st.just("1Z999AA10123456784"),
        "picking_ref": st.sampled_from(["A1/OUT/00042", "A1/IN/00007"]),
        "site": st.just("A1"),
        "status": st.sampled_from(["held_at_depot", "refused", "in_transit"]),
        "event_time": st.just("2026-05-04T09:30:00Z"),
        "new_eta": st.sampled_from(["2026-05-07T09:30:00+02:00", None]),
    },
    "supplier": {
        "type": st.sampled_from(schemas.SUPPLIER_TYPES),
        "order_ref": st.just("P00017"),
        "site": st.just("A1"),
        "lines": st.lists(
            st.fixed_dictionaries(
                {
                    "product": st.just("WIDGET-1"),
                    "quantity": st.integers(0, 20) | numbers,
                    "ordered_quantity": st.integers(0, 20),
                }
            ),
            min_size=1,
            max_size=3,
        ),
    },
    "n8n": {"type": st.sampled_from(["workflow.finished", "run.failed"])},
}


@st.composite
def valid_looking(draw, source: str) -> dict:
    """A well-formed event of the source, often with fields dropped or replaced by junk."""
    event = {field: draw(strategy) for field, strategy in TEMPLATES[source].items()}
    junk = draw(st.lists(st.sampled_from(sorted(event)), unique=True, max_size=3))
    for field in junk if draw(st.booleans()) else []:
        if draw(st.booleans()):
            event[field] = draw(values)
        else:
            del event[field]
    plain = st.none() | st.integers() | st.text(max_size=20)
    extras = st.dictionaries(st.text(max_size=8), plain, max_size=2)
    event.update(draw(extras | st.dictionaries(st.text(max_size=8), values, max_size=2)))
    return event


def dumped(value) -> bytes:
    """JSON as a sender might write it: NaN and Infinity slip through, surrogates escaped."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value).encode()


@st.composite
def deeply_nested(draw, source: str) -> bytes:
    depth = draw(st.integers(1, MAX_DEPTH_PARSED))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    event = draw(valid_looking(source)) | {"deep": "__DEEP__"}
    nested = opener * depth + "1" + closer * depth
    return dumped(event).replace(b'"__DEEP__"', nested.encode())


raw_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "",
            "null",
            "[]",
            '"just a string"',
            "NaN",
            '{"type": "shipment.delayed", "quantity": Infinity}',
            '{"type": "x"',
            '{"type": "x"}}',
            "{'type': 'x'}",
            '{"type": "x\x00"}',
            "\x00",
            "\ufeff{}",
            "1" * 5_000,
        ]
    ),
)


def bodies(source: str):
    return st.one_of(
        valid_looking(source).map(dumped),
        values.map(dumped),
        deeply_nested(source),
        raw_text.map(str.encode),
    )


def send(client, capture, source: str, body: bytes):
    headers = signed_headers(body, secret=demo.demo_secret(source))
    with capture(execute=True):
        response = post(client, source, body, headers)
    return response, headers["webhook-id"]


def cases() -> set:
    return set(ExceptionCase.objects.values_list("pk", "occurrences", "severity"))


@pytest.mark.parametrize("source", demo.SOURCES)
@settings(
    max_examples=70,
    deadline=None,
    database=None,
    # The fixtures (database, sources, site) are shared by every example on purpose: each
    # example checks only what its own delivery did.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_signed_garbage_never_fails_and_never_opens_a_case(
    source, data, client, site_a1, django_capture_on_commit_callbacks
):
    body = data.draw(bodies(source), label="body")
    before = cases()

    response, webhook_id = send(client, django_capture_on_commit_callbacks, source, body)
    event(f"HTTP {response.status_code}")  # shown by --hypothesis-show-statistics

    if len(body) > LIMIT:
        assert response.status_code == 413
        assert not InboundDelivery.objects.filter(webhook_id=webhook_id).exists()
        return
    assert response.status_code in (202, 400, 422), response.content[:500]
    delivery = InboundDelivery.objects.get(source__name=source, webhook_id=webhook_id)
    if response.status_code == 202:
        assert schemas.validate(source, json.loads(body)) == []
        assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    else:
        assert delivery.status == DeliveryStatus.REJECTED
        assert response.json()["error"]
        assert delivery.error
        assert cases() == before


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
        (b'{"type": "workflow.finished", "ratio": NaN}', 400, "NaN is not a JSON value"),
        (b'{"type": "workflow.finished", "n": ' + b"9" * 5_000 + b"}", 400, "not valid JSON"),
        (b'{"type": "workflow.finished", "note": "a\\u0000b"}', 422, "NUL character"),
        (b'{"type": "workflow.finished", "note": "\\ud800"}', 422, "unpaired surrogate"),
        (b'{"type": "workflow.finished", "big": 1e999}', 422, "finite"),
        (b'{"type": "workflow.finished", "a":' + b"[" * 40 + b"]" * 40 + b"}", 422, "levels"),
        (b'{"type": "\x00"}', 400, "not valid JSON"),
    ],
)
def test_each_kind_of_unstorable_body_is_rejected_with_its_reason(
    client, django_capture_on_commit_callbacks, body, status, words
):
    response, webhook_id = send(client, django_capture_on_commit_callbacks, "n8n", body)

    assert response.status_code == status
    assert words in response.json()["error"]
    delivery = InboundDelivery.objects.get(webhook_id=webhook_id)
    assert delivery.status == DeliveryStatus.REJECTED
    assert "\x00" not in delivery.body


def test_an_asn_quantity_of_infinity_is_refused_not_turned_into_a_case(
    client, site_a1, django_capture_on_commit_callbacks
):
    lines = [{"product": "WIDGET-1", "quantity": 1e999, "ordered_quantity": 5}]
    body = json.dumps({"type": "asn", "order_ref": "P1", "site": "A1", "lines": lines}).encode()

    response, _ = send(client, django_capture_on_commit_callbacks, "supplier", body)

    assert response.status_code == 400
    assert not ExceptionCase.objects.exists()


def test_an_overlong_webhook_id_is_refused_and_nothing_is_stored(client):
    body = b'{"type": "workflow.finished"}'
    headers = signed_headers(
        body, secret=demo.demo_secret("n8n"), webhook_id=f"msg_{uuid.uuid4().hex}" * 8
    )

    response = post(client, "n8n", body, headers)

    assert response.status_code == 400
    assert "webhook-id" in response.json()["error"]
    assert not InboundDelivery.objects.exists()
