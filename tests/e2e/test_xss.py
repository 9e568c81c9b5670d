"""Stored script in a real browser: what people and integrations typed shows as text and never runs.

The payloads go in the way an attacker would put them: a request's title and reason through
the approvals service, an approval comment and a rejection reason through the decisions, a
case note through the resolution, and a carrier's event through the signed inbound webhook.
Chromium then opens every page that shows them.
"""

import json

import pytest
from django.test import Client
from playwright.sync_api import expect

from approvals import services as approvals
from exceptions import services as cases
from exceptions.models import ExceptionCase
from portal.webhooks import demo as webhook_demo
from tests.webhooks.conftest import signed_headers

IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = '"><script>window.__xss=1</script>'
SVG = "<svg/onload=window.__xss=1>"
PAYLOAD = f"{IMG} {SCRIPT} {SVG}"


def _carrier_case(picking_ref: str, status: str, remark: str) -> ExceptionCase:
    event = {
        "type": "shipment.delayed",
        "tracking_number": "1Z999AA10123456784",
        "picking_ref": picking_ref,
        "site": "AMS",
        "status": status,
        "event_time": "2026-05-04T09:30:00Z",
        "remark": remark,
    }
    body = json.dumps(event).encode()
    headers = signed_headers(body, secret=webhook_demo.demo_secret("carrier"))
    response = Client().post(
        "/api/v1/webhooks/carrier/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 202, response.content
    return ExceptionCase.objects.get(payload__picking_ref=picking_ref)


@pytest.fixture
def stored_payloads(demo, monkeypatch):
    """Every place a person or an integration writes text, filled with script."""
    for name in webhook_demo.SOURCES:
        monkeypatch.delenv(f"WEBHOOK_SECRET_{name.upper()}", raising=False)
    manager, requester = demo.users["site.manager"], demo.users["requester"]
    approved = demo.raise_request("requester", "AMS", "1500", title=f"PO {IMG}", reason=PAYLOAD)
    approvals.request_approve(actor=manager, request_id=approved.pk, comment=f"ok {PAYLOAD}")
    rejected = demo.raise_request("requester", "AMS", "1600", title=f"PO {SCRIPT}")
    approvals.request_reject(actor=manager, request_id=rejected.pk, reason=f"no {PAYLOAD}")
    pending = demo.raise_request("requester", "AMS", "1700", title=f"PO {SVG}", reason=PAYLOAD)
    case = _carrier_case(picking_ref=f"AMS/OUT/{SCRIPT}", status=IMG, remark=PAYLOAD)
    cases.case_assign(actor=manager, case_id=case.pk, owner=manager)
    cases.case_resolve(actor=manager, case_id=case.pk, code="rescheduled", note=f"done {PAYLOAD}")
    assert requester is not None
    return {"approved": approved, "rejected": rejected, "pending": pending, "case": case}


def _assert_inert(page, expected_texts: list[str], dialogs: list):
    for text in expected_texts:
        expect(page.locator("body")).to_contain_text(text)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("img[src='x'], svg[onload], script:not([src])").count() == 0
    assert dialogs == []


def test_stored_script_shows_as_text_and_never_runs(stored_payloads, demo, page_for):
    approved, rejected = stored_payloads["approved"], stored_payloads["rejected"]
    pending, case = stored_payloads["pending"], stored_payloads["case"]
    page = page_for(demo.users["site.manager"])
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    visits = {
        f"/approvals/{approved.pk}/": [f"PO {IMG}", PAYLOAD, f"ok {PAYLOAD}"],
        f"/approvals/{rejected.pk}/": [f"PO {SCRIPT}", f"no {PAYLOAD}"],
        f"/approvals/{pending.pk}/": [f"PO {SVG}", PAYLOAD],
        f"/exceptions/{case.pk}/": [f"AMS/OUT/{SCRIPT}", IMG, f"done {PAYLOAD}"],
        "/": [f"PO {SVG}"],
        "/approvals/bulk/": [f"PO {SVG}"],
    }
    for url, texts in visits.items():
        response = page.goto(url)
        assert response.status == 200, url
        _assert_inert(page, texts, dialogs)

    # The payload of the case as received, including the carrier's free-text remark.
    page.goto(f"/exceptions/{case.pk}/")
    page.get_by_text("Payload as received").click()
    expect(page.locator("pre.payload")).to_contain_text(SCRIPT)
    expect(page.locator("pre.payload")).to_contain_text(SVG)
    _assert_inert(page, [], dialogs)


def test_stored_script_in_the_audit_trail_stays_text(stored_payloads, demo, page_for):
    approved = stored_payloads["approved"]
    page = page_for(demo.users["auditor"])
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    response = page.goto(f"/audit/trail/approvals.approvalrequest/{approved.pk}/")

    assert response.status == 200
    _assert_inert(page, [f"ok {PAYLOAD}"], dialogs)
