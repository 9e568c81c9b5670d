"""Raising requests in the browser: the form per kind, drafts, revisions and the route preview."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import services
from approvals.kinds import KINDS
from approvals.models import ApprovalRequest, RequestState
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.approvals.conftest import raise_request
from tests.conftest import persona
from tests.factories import grant

pytestmark = pytest.mark.django_db

KIND_FIELDS = {
    "purchase": {"counterparty": "Hanse Coffee Traders", "counterparty_ref": "res.partner,20"},
    "transfer": {"category": "All / Goods / Frozen"},
    "write_off": {"category": "All / Goods / Frozen"},
    "price_override": {
        "category": "All / Goods / Dry Food",
        "customer_class": "standard",
        "counterparty": "Cork Street Kitchen",
        "detail_product": "[TG-0008] Olive Oil 6x1L",
        "detail_unit_price": "31.00",
        "detail_floor_price": "34.00",
    },
    "credit_exception": {
        "customer_class": "key",
        "counterparty": "Cork Street Kitchen",
        "detail_credit_limit": "10000",
        "detail_exposure": "12500",
    },
    "return_authorization": {
        "category": "All / Goods / Beverages",
        "customer_class": "wholesale",
        "counterparty": "Cork Street Kitchen",
    },
    "expedited_freight": {"detail_carrier": "DHL Express, next morning"},
}


def form_data(site, kind="write_off", *, lines=(), action="submit", **fields) -> dict:
    """What the browser posts for a filled-in form of `kind`."""
    data = {
        "site": str(site.pk),
        "title": f"Browser {kind}",
        "currency": "EUR",
        "amount": "800.00",
        "reason": "Freezer failure on Sunday night; the stock thawed.",
        "action": action,
        "lines-TOTAL_FORMS": str(max(1, len(lines))),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "50",
    }
    data |= KIND_FIELDS.get(kind, {})
    if kind == "transfer":
        from sites.models import Site

        data["detail_destination_site"] = str(Site.objects.get(code="A2").pk)
    for index, (product, quantity, price) in enumerate(lines):
        data |= {
            f"lines-{index}-product": product,
            f"lines-{index}-quantity": quantity,
            f"lines-{index}-unit_price": price,
        }
    return data | fields


def new_url(kind="write_off") -> str:
    return reverse("approvals:raise_new", args=[kind])


@pytest.mark.parametrize("kind", list(KINDS))
def test_requester_raises_each_kind_with_its_required_fields(
    client, matrix, requester, site_a1, site_a2, kind
):
    client.force_login(requester)

    response = client.post(new_url(kind), form_data(site_a1, kind))

    request = ApprovalRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("approvals:detail", args=[request.pk])
    assert request.kind == kind and request.requester == requester and request.site == site_a1
    assert request.state in (RequestState.IN_REVIEW, RequestState.APPROVED)
    assert request.reason.startswith("Freezer failure")
    if KINDS[kind].counterparty:
        assert request.counterparty == "Hanse Coffee Traders" or request.counterparty.startswith(
            "Cork"
        )
    for name in KINDS[kind].details:
        assert request.details[name]


def test_form_asks_only_for_what_the_kind_needs(client, matrix, requester, site_a1):
    client.force_login(requester)

    freight = client.get(new_url("expedited_freight")).content.decode()
    write_off = client.get(new_url("write_off")).content.decode()

    assert 'name="detail_carrier"' in freight and 'name="counterparty"' not in freight
    assert 'name="lines-0-product"' not in freight
    assert 'name="category"' in write_off and 'name="lines-0-product"' in write_off
    assert 'name="customer_class"' not in write_off
    # The one site the requester holds is chosen already.
    assert f'<option value="{site_a1.pk}" selected>' in write_off


def test_missing_field_answers_400_naming_it_and_keeps_everything_typed(
    client, matrix, requester, site_a1
):
    client.force_login(requester)
    data = form_data(
        site_a1,
        lines=[("[TG-0011] Frozen Fries 4x2.5kg", "12", "13.20")],
        category="",
        title="Thawed fries after the freezer failed",
    )

    response = client.post(new_url(), data)

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_category-error"' in page and "Give the product category." in page
    assert 'value="Thawed fries after the freezer failed"' in page
    assert 'value="[TG-0011] Frozen Fries 4x2.5kg"' in page
    assert 'value="13.20"' in page
    assert "Freezer failure on Sunday night" in page
    assert not ApprovalRequest.objects.exists()


def test_missing_kind_detail_is_named_next_to_its_field(client, matrix, requester, site_a1):
    client.force_login(requester)

    response = client.post(
        new_url("expedited_freight"), form_data(site_a1, "expedited_freight", detail_carrier="")
    )

    assert response.status_code == 400
    assert 'id="id_detail_carrier-error"' in response.content.decode()
    assert "Carrier is required." in response.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_lines_make_the_amount_and_are_stored_in_the_shared_shape(
    client, matrix, requester, site_a1
):
    client.force_login(requester)
    lines = [("[TG-0011] Frozen Fries 4x2.5kg", "12", "13.20"), ("Ice cream tubs", "2.5", "4")]

    client.post(new_url(), form_data(site_a1, lines=lines, amount="1"))

    request = ApprovalRequest.objects.get()
    assert request.amount == Decimal("168.40")
    assert request.details["line_items"] == [
        {
            "product": "[TG-0011] Frozen Fries 4x2.5kg",
            "quantity": "12",
            "unit_price": "13.20",
            "subtotal": "158.40",
        },
        {"product": "Ice cream tubs", "quantity": "2.5", "unit_price": "4.00", "subtotal": "10.00"},
    ]
    page = client.get(reverse("approvals:detail", args=[request.pk])).content.decode()
    assert "Frozen Fries 4x2.5kg" in page and "€158.40" in page
    assert "{&#x27;" not in page and "{'" not in page


def test_no_amount_and_no_lines_is_refused(client, matrix, requester, site_a1):
    client.force_login(requester)

    response = client.post(new_url(), form_data(site_a1, amount=""))

    assert response.status_code == 400
    assert "Give the amount, or list the lines it is made of." in response.content.decode()


def test_outsider_cannot_raise_at_another_regions_site(client, matrix, outsider, site_a1):
    client.force_login(outsider)

    response = client.post(new_url(), form_data(site_a1))

    assert response.status_code == 400
    assert "You may not raise requests at that site" in response.content.decode()
    assert not ApprovalRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.created").exists()


def test_person_without_a_raising_role_is_told_so(client, matrix, auditor, site_a1):
    client.force_login(auditor)

    chooser = client.get(reverse("approvals:raise"))
    post = client.post(new_url(), form_data(site_a1))

    assert chooser.status_code == 403
    assert "You hold no role that raises requests" in chooser.content.decode()
    assert post.status_code == 403
    assert not ApprovalRequest.objects.exists()


def test_kind_chooser_lists_every_kind_and_inbox_offers_new_request(client, matrix, requester):
    client.force_login(requester)

    chooser = client.get(reverse("approvals:raise")).content.decode()
    inbox = client.get(reverse("inbox:home")).content.decode()

    for kind in KINDS:
        assert reverse("approvals:raise_new", args=[kind]) in chooser
    assert 'id="new-request"' in inbox and 'id="no-own-requests"' in inbox


def test_kind_chooser_costs_the_same_queries_at_one_site_or_many(
    client, matrix, requester, site_a1, site_a2, site_b1
):
    client.force_login(requester)

    def chooser() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as captured:
            page = client.get(reverse("approvals:raise"))
        assert page.status_code == 200
        return page.content.decode(), len(captured)

    one, few = chooser()
    for site in (site_a2, site_b1):
        grant(requester, Role.REQUESTER, site=site)
    many, more = chooser()

    assert "You raise it at A1" in one
    assert "You choose the site on the next page" in many and "You raise it at" not in many
    assert more == few


def test_draft_is_edited_then_submitted(client, matrix, requester, site_a1, site_manager):
    client.force_login(requester)
    client.post(new_url(), form_data(site_a1, action="draft", amount="300"))
    draft = ApprovalRequest.objects.get()
    assert draft.state == RequestState.DRAFT
    edit = reverse("approvals:edit", args=[draft.pk])
    assert 'value="300.00"' in client.get(edit).content.decode()

    response = client.post(edit, form_data(site_a1, amount="450", title="Thawed stock, recounted"))

    draft.refresh_from_db()
    assert response.status_code == 302
    assert draft.state == RequestState.IN_REVIEW
    assert draft.amount == Decimal("450.00") and draft.title == "Thawed stock, recounted"
    assert AuditEvent.objects.filter(action="request.edited", object_id=str(draft.pk)).exists()
    assert client.get(edit).status_code == 404  # submitted: no longer a draft


def test_someone_else_cannot_open_a_draft_for_editing(client, matrix, requester, site_manager):
    draft = raise_request(requester, requester.memberships.get().site, submit=False)
    client.force_login(site_manager)

    response = client.get(reverse("approvals:edit", args=[draft.pk]))

    assert response.status_code == 404


def test_rejected_request_is_revised_and_resubmitted_keeping_its_history(
    client, matrix, requester, site_a1, site_manager
):
    old = raise_request(requester, site_a1, kind="write_off", amount="600", category="Frozen")
    services.request_reject(actor=site_manager, request_id=old.pk, reason="Attach the photos")
    client.force_login(requester)
    page = client.get(reverse("approvals:detail", args=[old.pk])).content.decode()
    revise = reverse("approvals:resubmit", args=[old.pk])
    assert f'href="{revise}"' in page
    form_page = client.get(revise).content.decode()
    assert "Rejected by" in form_page and "Attach the photos" in form_page
    assert 'value="600.00"' in form_page

    response = client.post(
        revise, form_data(site_a1, amount="550", reason="Recounted; photos attached.")
    )

    new = ApprovalRequest.objects.get(revision_of=old)
    assert response.status_code == 302
    assert new.revision == 2 and new.state == RequestState.IN_REVIEW
    assert new.amount == Decimal("550.00") and new.reason == "Recounted; photos attached."
    old.refresh_from_db()
    assert old.state == RequestState.REJECTED
    new_page = client.get(reverse("approvals:detail", args=[new.pk])).content.decode()
    assert f'Revision 2 of <a href="{reverse("approvals:detail", args=[old.pk])}">' in new_page
    old_page = client.get(reverse("approvals:detail", args=[old.pk])).content.decode()
    assert "Raised again as" in old_page and f'href="{revise}"' not in old_page
    assert client.get(revise).status_code == 404


def test_route_preview_names_the_tiers_and_people_before_submitting(
    client, matrix, requester, site_a1, site_manager, finance
):
    client.force_login(requester)
    data = form_data(site_a1, amount="1500", action="preview")

    response = client.post(new_url(), data)
    fragment = client.post(reverse("approvals:route_preview", args=["write_off"]), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert not ApprovalRequest.objects.exists()
    for html in (page, fragment.content.decode()):
        assert "Tier 1" in html and "Tier 2" in html
        assert site_manager.get_full_name() in html and finance.get_full_name() in html
        assert "site manager at A1" in html
    assert "Large write-offs" in page


def test_route_preview_says_what_is_missing(client, matrix, requester, site_a1):
    client.force_login(requester)

    page = client.get(new_url()).content.decode()

    assert "Give the amount (or the lines) to see who would approve this." in page


def test_new_request_page_costs_the_same_queries_as_the_company_grows(
    client, matrix, requester, site_a1, site_manager
):
    client.force_login(requester)
    data = form_data(site_a1, amount="1500", action="preview")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(new_url()).status_code == 200
            assert client.post(new_url(), data).status_code == 200
        return len(captured)

    few = queries()
    for number in range(6):
        persona(f"extra.manager.{number}", Role.SITE_MANAGER, site=site_a1)
        raise_request(requester, site_a1, kind="write_off", amount=str(200 + number))

    assert queries() == few


def test_search_says_odoo_could_not_be_searched_when_it_is_unreachable(
    client, settings, requester, site_a1
):
    settings.ODOO_URL = "http://127.0.0.1:9"
    settings.ODOO_VERSION = "17.0"
    client.force_login(requester)

    answer = client.get(reverse("approvals:search_products"), {"q": "fries"}).json()

    assert answer == {
        "results": [],
        "error": "Odoo could not be searched just now; type the name.",
    }


def test_search_is_not_offered_to_people_who_raise_nothing(client, auditor):
    client.force_login(auditor)

    response = client.get(reverse("approvals:search_partners", args=["vendor"]), {"q": "Hanse"})

    assert response.status_code == 404
