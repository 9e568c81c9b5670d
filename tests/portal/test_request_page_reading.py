"""The request page read by an approver: what is decided, in words and formatted numbers, and
deciding quickly (approve and next, keys)."""

import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import services
from approvals.models import ApprovalRequest, RequestState
from portal.integrations.odoo import links
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed

D = Decimal
PYTHON_DATA = re.compile(r"[\[{]'|\[\d+(, \d+)*\]")

PURCHASE_LINES = [
    {
        "product": "[TG-0011] Frozen Fries 4x2.5kg",
        "product_ref": "product.product,11",
        "quantity": "1200",
        "uom": "Units",
        "unit_price": "10.50",
        "subtotal": "12600.00",
        "last_price": "10.00",
    },
    {
        "product": "[TG-0002] Lemonade 12x1L",
        "quantity": "300",
        "unit_price": "9.80",
        "subtotal": "2940.00",
    },
]
TRANSFER_LINES = [
    {
        "product": "[TG-0007] Sparkling Water 24x0.5L",
        "quantity": "40",
        "unit_price": "12.00",
        "subtotal": "480.00",
        "source_after": "110",
        "destination_after": "65",
    }
]
SCRAP_LINES = [
    {
        "product": "[TG-0020] Yoghurt 6x150g",
        "quantity": "90",
        "unit_price": "3.10",
        "subtotal": "279.00",
    }
]
OVERRIDE_LINES = [
    {
        "product": "[TG-0002] Lemonade 12x1L",
        "quantity": "500",
        "list_price": "14.00",
        "floor_price": "11.50",
        "unit_price": "10.92",
        "subtotal": "5460.00",
    }
]


def _page(client, request_id, **params):
    return client.get(reverse("approvals:detail", args=[request_id]), params)


def _text(html: str) -> str:
    """The page as a reader sees it: tags dropped, whitespace folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _raise(requester, site, kind, lines, amount, **extra):
    details = {**approval_fixtures._details(kind), "line_items": lines, **extra.pop("details", {})}
    return raise_request(requester, site, kind=kind, amount=amount, details=details, **extra)


@pytest.fixture
def purchase(matrix, requester, site_a1):
    return _raise(
        requester, site_a1, "purchase", PURCHASE_LINES, "15540", title="Fries and lemonade"
    )


def test_purchase_lines_show_product_quantity_prices_and_difference_to_last_price_paid(
    client, purchase, site_manager
):
    client.force_login(site_manager)

    table = _text(_page(client, purchase.pk).text.split('id="line-items"')[1].split("</table>")[0])

    assert "Product Quantity Unit price Last price paid Difference Subtotal" in table
    assert (
        "[TG-0011] Frozen Fries 4x2.5kg 1,200 Units €10.50 €10.00 +€0.50 (+5 %) €12,600.00" in table
    )
    assert "[TG-0002] Lemonade 12x1L 300 €9.80 — — €2,940.00" in table
    assert "Total €15,540.00" in table


def test_transfer_lines_name_both_warehouses_and_the_stock_each_holds_after(
    client, matrix, requester, site_a1, site_manager
):
    transfer = _raise(requester, site_a1, "transfer", TRANSFER_LINES, "480")
    client.force_login(site_manager)

    page = _text(_page(client, transfer.pk).text)

    assert f"From A1 {transfer.site.name} to A2 " in page
    assert "Left at A1" in page and "At A2 after" in page
    assert "[TG-0007] Sparkling Water 24x0.5L 40 110 65 €480.00" in page


def test_scrap_lines_show_what_is_lost(client, matrix, requester, site_a1, site_manager):
    scrap = _raise(requester, site_a1, "write_off", SCRAP_LINES, "279")
    client.force_login(site_manager)

    page = _text(_page(client, scrap.pk).text)

    assert "1 line scrapped" in page
    assert "Unit cost Value lost" in page
    assert "[TG-0020] Yoghurt 6x150g 90 €3.10 €279.00" in page


def test_price_override_shows_list_price_floor_offer_and_discount(
    client, matrix, requester, site_a1, site_manager
):
    override = _raise(
        requester,
        site_a1,
        "price_override",
        OVERRIDE_LINES,
        "290",
        details={"product": "[TG-0002] Lemonade 12x1L", "unit_price": "10.92"},
    )
    client.force_login(site_manager)

    page = _text(_page(client, override.pk).text)

    assert "List price Floor Offered price Discount Subtotal" in page
    assert "[TG-0002] Lemonade 12x1L 500 €14.00 €11.50 €10.92 22 % €5,460.00" in page
    assert "Offered price €10.92" in page  # the detail facts are money too
    assert "['[TG-0002]" not in page


def test_odoo_line_items_win_over_the_browsers(client, matrix, requester, site_a1, site_manager):
    purchase = _raise(requester, site_a1, "purchase", PURCHASE_LINES, "15540")
    ApprovalRequest.objects.filter(pk=purchase.pk).update(
        odoo_snapshot={"lines": [366, 367], "line_items": SCRAP_LINES}
    )
    client.force_login(site_manager)

    page = _text(_page(client, purchase.pk).text)

    assert "Yoghurt" in page and "Frozen Fries" not in page
    assert "366" not in page


def test_old_request_without_line_items_says_so_in_a_sentence_never_ids(
    client, matrix, requester, site_a1, site_manager
):
    old = raise_request(requester, site_a1, amount="6000", details={"lines": 3})
    ApprovalRequest.objects.filter(pk=old.pk).update(
        odoo_model="purchase.order",
        odoo_id=42,
        odoo_snapshot={"lines": [366, 367, 368], "state": "to approve"},
    )
    client.force_login(site_manager)

    page = _text(_page(client, old.pk).text)

    assert "Odoo holds 3 lines for this record" in page
    assert "366" not in page and "368" not in page
    assert "State in Odoo Waiting for approval" in page


@pytest.mark.parametrize(
    ("kind", "lines", "amount"),
    [
        ("purchase", PURCHASE_LINES, "15540"),
        ("transfer", TRANSFER_LINES, "480"),
        ("write_off", SCRAP_LINES, "279"),
        ("price_override", OVERRIDE_LINES, "290"),
        ("credit_exception", [], "12500"),
        ("expedited_freight", [], "900"),
    ],
)
def test_no_python_data_or_raw_times_on_the_page_for_any_kind(
    client, matrix, requester, site_a1, site_manager, finance, kind, lines, amount
):
    request = _raise(requester, site_a1, kind, lines, amount)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        odoo_snapshot={"lines": [[11, "4.0"], [12, "2.0"]], "nested": {"a": [1, 2]}}
    )
    client.force_login(finance if kind == "credit_exception" else site_manager)

    page = _page(client, request.pk).text
    text = _text(page)

    assert not PYTHON_DATA.search(text), PYTHON_DATA.search(text)
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)
    assert (
        "Customer since" in text
        or "Vendor since" in text
        or kind
        in (
            "transfer",
            "write_off",
            "expedited_freight",
        )
    )


def test_counterparty_since_reads_as_month_and_years(
    client, matrix, requester, site_a1, site_manager
):
    override = _raise(requester, site_a1, "price_override", OVERRIDE_LINES, "290")
    client.force_login(site_manager)

    page = _text(_page(client, override.pk).text)

    assert "Customer since Jan 2019 (7 years)" in page
    assert "2019-01-01" not in page


def test_heading_amount_has_thousands_separator_and_currency(
    client, matrix, requester, site_b1, staffed
):
    uk = raise_request(staffed["requester_b"], site_b1, amount="154482")
    client.force_login(staffed["regional_manager_b"])

    page = _text(_page(client, uk.pk).text)

    assert "£154,482.00" in page
    assert "154482.00 GBP" not in page


def test_german_reader_gets_german_separators(client, purchase, site_manager):
    client.force_login(site_manager)

    url = reverse("approvals:detail", args=[purchase.pk])
    page = _text(client.get(url, HTTP_ACCEPT_LANGUAGE="de-DE").text)

    assert "15.540,00 €" in page


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("16.0", "/web#id=42&model=purchase.order&view_type=form"),
        ("17.0", "/web#id=42&model=purchase.order&view_type=form"),
        ("saas~17.2", "/web#id=42&model=purchase.order&view_type=form"),
        ("18.0", "/odoo/purchase.order/42"),
        ("19.0+e", "/odoo/purchase.order/42"),
    ],
)
def test_open_in_odoo_link_follows_the_servers_version(
    client, purchase, site_manager, settings, version, expected
):
    settings.ODOO_VERSION = version
    ApprovalRequest.objects.filter(pk=purchase.pk).update(odoo_model="purchase.order", odoo_id=42)
    client.force_login(site_manager)

    page = _page(client, purchase.pk).text

    assert f'href="{settings.ODOO_URL.rstrip("/")}{expected}"'.replace("&", "&amp;") in page


def test_odoo_link_uses_the_version_the_last_sync_saw(settings):
    settings.ODOO_VERSION = None
    cache.delete(links.VERSION_KEY)
    assert "/web#" in links.record_url("stock.picking", 7)

    links.remember_server_version("18.0")

    assert links.record_url("stock.picking", 7).endswith("/odoo/stock.picking/7")


def test_timeline_tells_each_event_as_a_sentence_with_on_behalf_of(
    client, purchase, site_manager, regional_manager, staffed
):
    services.request_approve(actor=site_manager, request_id=purchase.pk, comment="Fine")
    client.force_login(regional_manager)

    timeline = _text(
        _page(client, purchase.pk).text.split('id="timeline"')[1].split("</section>")[0]
    )

    assert "Raised by" in timeline and "Submitted by" in timeline
    assert "Sent for review" in timeline
    assert f"Approved by {site_manager.get_full_name() or site_manager.username}" in timeline
    assert "Times at A1, CET." in timeline
    assert "request.in_review" not in timeline and "decision.approve" not in timeline


def test_unknown_event_falls_back_to_words():
    from types import SimpleNamespace

    from portal.audit.sentences import event_sentence

    event = SimpleNamespace(
        action="request.sent_to_archive", actor=None, actor_label="tollgate", on_behalf_of=None
    )

    assert event_sentence(event) == "Request sent to archive"


def test_decision_panel_offers_approve_and_next_with_keys_and_folds_delegation(
    client, purchase, site_manager
):
    client.force_login(site_manager)

    page = _page(client, purchase.pk, **{"from": "kind=purchase"}).text

    assert "Approve and next" in page and "Reject and next" in page
    assert 'data-key="a"' in page and 'data-key="r"' in page and 'data-key="n"' in page
    assert 'id="keys-hint"' in page and "<kbd>a</kbd> approve" in page
    assert '<details class="fold" id="delegate"' in page
    assert 'name="from" value="kind=purchase"' in page
    assert re.search(r'src="[^"]*js/keys[.\w]*\.js"', page)


def _decide(client, request, verb="approve", **data):
    form = {"comment": "", "reason": "Not now", **data}
    return client.post(reverse(f"approvals:{verb}", args=[request.pk]), form)


def _follow(client, response):
    assert response.status_code == 302
    landing = client.get(response["Location"])
    assert landing.status_code == 302
    return landing["Location"]


def test_approve_and_next_lands_on_the_next_item_in_the_same_filter(
    client, matrix, requester, site_a1, site_manager
):
    first = raise_request(requester, site_a1, amount="6000", title="First purchase")
    raise_request(requester, site_a1, kind="transfer", amount="3000", title="A transfer")
    second = raise_request(requester, site_a1, amount="6100", title="Second purchase")
    client.force_login(site_manager)

    response = _decide(client, first, then="next", **{"from": "kind=purchase"})
    landing = _follow(client, response)

    assert landing == reverse("approvals:detail", args=[second.pk]) + "?from=kind%3Dpurchase"
    assert ApprovalRequest.objects.get(pk=first.pk).steps.get(position=1).state == "approved"
    page = client.get(landing).text
    assert "You approved" in page and "Second purchase" in page


def test_reject_and_next_back_to_the_inbox_when_nothing_is_left(
    client, matrix, requester, site_a1, site_manager
):
    only = raise_request(requester, site_a1, amount="6000")
    client.force_login(site_manager)

    response = _decide(client, only, "reject", then="next", **{"from": "kind=purchase"})
    landing = _follow(client, response)

    assert landing == reverse("inbox:home") + "?kind=purchase"
    assert ApprovalRequest.objects.get(pk=only.pk).state == RequestState.REJECTED
    inbox = client.get(landing).text
    assert "Nothing else waits for you under these filters." in inbox


def test_plain_approve_stays_on_the_request(client, purchase, site_manager):
    client.force_login(site_manager)

    response = _decide(client, purchase, **{"from": "kind=purchase"})

    assert response["Location"] == reverse("approvals:detail", args=[purchase.pk]) + (
        "?from=kind%3Dpurchase"
    )


def test_skip_to_next_goes_to_the_item_after_this_one(
    client, matrix, requester, site_a1, site_manager
):
    first = raise_request(requester, site_a1, amount="6000")
    second = raise_request(requester, site_a1, amount="6100")
    client.force_login(site_manager)

    response = client.get(reverse("inbox:next"), {"done": first.pk, "from": ""})

    assert response["Location"].startswith(reverse("approvals:detail", args=[second.pk]))


def test_forged_filter_is_dropped_not_obeyed(client, matrix, requester, site_a1, site_manager):
    first = raise_request(requester, site_a1, amount="6000")
    client.force_login(site_manager)

    response = client.get(
        reverse("inbox:next"), {"done": "0", "from": "min_amount=lots&evil=1&kind=purchase"}
    )

    assert response["Location"] == (
        reverse("approvals:detail", args=[first.pk]) + "?from=kind%3Dpurchase"
    )


def test_missing_required_comment_keeps_the_typed_text_and_the_way_on(
    client, matrix, requester, site_a1, finance
):
    credit = raise_request(requester, site_a1, kind="credit_exception", amount="12500")
    client.force_login(finance)

    response = client.post(
        reverse("approvals:reject", args=[credit.pk]),
        {"reason": "", "then": "next", "from": "kind=credit_exception"},
    )

    assert response.status_code == 400
    assert 'name="from" value="kind=credit_exception"' in response.text


def test_request_page_costs_the_same_queries_with_many_lines(
    client, matrix, requester, site_a1, site_manager
):
    few = _raise(requester, site_a1, "transfer", TRANSFER_LINES, "480")
    many = _raise(requester, site_a1, "transfer", TRANSFER_LINES * 60, "28800")
    client.force_login(site_manager)

    def queries(request):
        with CaptureQueriesContext(connection) as captured:
            assert _page(client, request.pk).status_code == 200
        return len(captured)

    queries(few)
    assert queries(many) == queries(few)


def test_inbox_rows_carry_the_filter_to_the_request_and_take_the_keys(
    client, matrix, requester, site_a1, site_manager
):
    purchase = raise_request(requester, site_a1, amount="6000")
    client.force_login(site_manager)

    page = client.get(reverse("inbox:home"), {"kind": "purchase", "q": "purchase"}).text

    link = reverse("approvals:detail", args=[purchase.pk]) + "?from=kind%3Dpurchase%26q%3Dpurchase"
    assert f'href="{link}"' in page
    assert "data-keys-list" in page and "data-keys-row" in page
    assert "€6,000.00" in page
