"""The request page and its decisions, through Django's test client."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest, Decision, RequestState, StepState
from portal.core import formatting
from sites.roles import Role
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request
from tests.conftest import persona

# The staffed company and its policy matrix, shared with the approvals tests.
_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed
colleague = approval_fixtures.colleague

D = Decimal


def _page(client, request_id):
    return client.get(reverse("approvals:detail", args=[request_id]))


def _reload(request):
    return ApprovalRequest.objects.get(pk=request.pk)


@pytest.fixture
def purchase(matrix, requester, site_a1):
    return raise_request(requester, site_a1, amount="6000", title="Pallets for the spring")


def test_site_manager_sees_what_is_asked_and_may_decide(client, purchase, site_manager):
    client.force_login(site_manager)

    response = _page(client, purchase.pk)

    page = response.text
    assert response.status_code == 200
    assert "Pallets for the spring" in page
    assert "Stock for the spring season" in page
    assert 'id="approve-form"' in page and 'id="reject-form"' in page
    assert "Tier 1" in page and "Tier 2" in page
    assert "Regional manager" in page
    # The timeline comes from the ledger, told in sentences rather than event codes.
    assert "Raised by" in page and "Submitted by" in page and "Sent for review" in page
    assert "request.created" not in page and "request.submitted" not in page
    assert 'id="why-not-decide"' not in page


def test_outsider_gets_404_for_another_regions_request(client, purchase, outsider):
    client.force_login(outsider)

    response = _page(client, purchase.pk)

    assert response.status_code == 404
    assert "nothing you can see" in response.text


def test_unknown_request_is_404(client, matrix, site_manager):
    client.force_login(site_manager)

    assert _page(client, 999999).status_code == 404


def test_requester_sees_why_they_cannot_decide_and_may_withdraw(client, purchase, requester):
    client.force_login(requester)

    page = _page(client, purchase.pk).text

    assert 'id="approve-form"' not in page
    assert "You raised this request, so someone else must decide it." in page
    assert 'id="withdraw-form"' in page


def test_site_manager_is_told_why_withdraw_is_hidden(client, purchase, site_manager):
    client.force_login(site_manager)

    page = _page(client, purchase.pk).text

    assert 'id="withdraw-form"' not in page
    assert "Only the requester may withdraw" in page


def test_site_manager_approves_with_comment_and_the_next_tier_opens(client, purchase, site_manager):
    client.force_login(site_manager)

    response = client.post(
        reverse("approvals:approve", args=[purchase.pk]), {"comment": "Needed for spring"}
    )

    assert response.status_code == 302
    decision = Decision.objects.get(request=purchase)
    assert (decision.actor, decision.comment) == (site_manager, "Needed for spring")
    steps = list(purchase.steps.order_by("position").values_list("state", flat=True))
    assert steps == [StepState.APPROVED, StepState.ACTIVE]
    page = client.get(response.url).text
    assert f"You approved {purchase.reference}." in page
    assert "You approved another tier of this request" in page


def test_reject_without_reason_shows_the_message_and_changes_nothing(
    client, purchase, site_manager
):
    client.force_login(site_manager)

    response = client.post(reverse("approvals:reject", args=[purchase.pk]), {"reason": "  "})

    assert response.status_code == 400
    assert "Say why the request is rejected." in response.text
    assert _reload(purchase).state == RequestState.IN_REVIEW
    assert not Decision.objects.filter(request=purchase).exists()


def test_reject_with_reason_rejects(client, purchase, site_manager):
    client.force_login(site_manager)

    response = client.post(
        reverse("approvals:reject", args=[purchase.pk]), {"reason": "Over budget"}
    )

    assert response.status_code == 302
    assert _reload(purchase).state == RequestState.REJECTED


def test_stale_approval_shows_the_409_page_with_the_current_state(
    client, matrix, requester, site_a1, site_manager, staffed
):
    routine = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)
    page = _page(client, routine.pk).text
    assert 'id="approve-form"' in page
    # Meanwhile the request is withdrawn by its requester.
    services.request_withdraw(actor=requester, request_id=routine.pk)

    response = client.post(reverse("approvals:approve", args=[routine.pk]), {"comment": ""})

    assert response.status_code == 409
    assert "Someone else got there first" in response.text
    assert "Withdrawn" in response.text
    assert not Decision.objects.filter(request=routine).exists()


def test_stale_tier_decided_by_a_colleague_is_409(client, matrix, requester, site_a1, staffed):
    from sites.roles import Role
    from tests.conftest import persona

    first = persona("sm.first", Role.SITE_MANAGER, site=site_a1)
    second = persona("sm.second", Role.SITE_MANAGER, site=site_a1)
    routine = raise_request(requester, site_a1, amount="1000")
    step = routine.steps.get()
    services.request_approve(actor=first, request_id=routine.pk, step_id=step.pk)
    client.force_login(second)

    response = client.post(
        reverse("approvals:approve", args=[routine.pk]), {"step": step.pk, "comment": ""}
    )

    assert response.status_code == 409
    assert "Approved" in response.text
    assert Decision.objects.filter(request=routine).count() == 1


def test_tier_that_needs_a_comment_refuses_an_approval_without_one(
    client, matrix, requester, site_a1, finance
):
    credit = raise_request(requester, site_a1, kind="credit_exception", amount="2500")
    client.force_login(finance)
    assert "Comment (required for this tier)" in _page(client, credit.pk).text

    response = client.post(reverse("approvals:approve", args=[credit.pk]), {"comment": ""})

    assert response.status_code == 400
    assert "This tier needs a comment with the approval." in response.text
    assert _reload(credit).state == RequestState.IN_REVIEW


def test_outsider_posting_a_decision_gets_404(client, purchase, outsider):
    client.force_login(outsider)

    response = client.post(reverse("approvals:approve", args=[purchase.pk]), {"comment": "x"})

    assert response.status_code == 404
    assert not Decision.objects.filter(request=purchase).exists()


def test_requester_withdraws(client, purchase, requester):
    client.force_login(requester)

    response = client.post(
        reverse("approvals:withdraw", args=[purchase.pk]), {"reason": "Bought elsewhere"}
    )

    assert response.status_code == 302
    assert _reload(purchase).state == RequestState.WITHDRAWN


def test_site_manager_may_not_withdraw(client, purchase, site_manager):
    client.force_login(site_manager)

    response = client.post(reverse("approvals:withdraw", args=[purchase.pk]), {})

    assert response.status_code == 403
    assert "Only the requester may withdraw" in response.text
    assert _reload(purchase).state == RequestState.IN_REVIEW


def test_decision_forms_are_csrf_protected(purchase, site_manager):
    client = Client(enforce_csrf_checks=True)
    client.force_login(site_manager)

    page = client.get(reverse("approvals:detail", args=[purchase.pk])).text
    response = client.post(reverse("approvals:approve", args=[purchase.pk]), {"comment": "x"})

    assert "csrfmiddlewaretoken" in page
    assert response.status_code == 403
    assert not Decision.objects.filter(request=purchase).exists()


def test_get_never_decides(client, purchase, site_manager):
    client.force_login(site_manager)

    response = client.get(reverse("approvals:approve", args=[purchase.pk]))

    assert response.status_code == 405
    assert not Decision.objects.filter(request=purchase).exists()


def test_delegate_decides_on_behalf_of_the_site_manager(client, purchase, site_manager, colleague):
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=timezone.now() - timezone.timedelta(hours=1),
        ends_at=timezone.now() + timezone.timedelta(days=3),
    )
    client.force_login(colleague)

    page = _page(client, purchase.pk).text
    inbox = client.get(reverse("inbox:home")).text

    assert "You decide on behalf of" in page
    assert "on behalf of" in inbox and purchase.reference in inbox


def test_risk_flags_are_explained(client, matrix, requester, site_a1, site_manager):
    flagged = raise_request(
        requester,
        site_a1,
        amount="1000",
        counterparty="Brand New Ltd",
        counterparty_ref="res.partner,999",
        details={"counterparty_since": timezone.now().date().isoformat()},
    )
    client.force_login(site_manager)

    page = _page(client, flagged.pk).text

    assert flagged.risk_flags, "the new vendor should raise a flag"
    assert "New vendor or customer" in page
    assert flagged.risk_flags[0]["explanation"][:30] in page


def test_earlier_decisions_for_the_vendor_are_shown(
    client, matrix, requester, site_a1, site_manager
):
    earlier = raise_request(requester, site_a1, amount="900", title="Earlier pallets")
    services.request_reject(actor=site_manager, request_id=earlier.pk, reason="Too early")
    current = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)

    page = _page(client, current.pk).text

    assert "Earlier pallets" in page
    assert "1 decided: 0 approved, 1 rejected" in page


def test_retry_is_hidden_with_its_reason_after_a_failed_update(
    client, matrix, requester, site_a1, site_manager
):
    routine = raise_request(
        requester, site_a1, amount="1000", odoo_model="purchase.order", odoo_id=4242
    )
    services.request_approve(actor=site_manager, request_id=routine.pk)
    if _reload(routine).state == RequestState.APPROVED:
        services.request_mark_apply_failed(request_id=routine.pk, error="Odoo said no")
    client.force_login(site_manager)

    page = _page(client, routine.pk).text

    assert _reload(routine).state == RequestState.APPLY_FAILED
    assert "Odoo update failed" in page
    assert 'id="retry-form"' not in page
    assert "Only an administrator of the site may retry" in page


# --- bulk approval ------------------------------------------------------------------------------

BULK = reverse("approvals:bulk")


def test_bulk_page_groups_routine_items_and_says_why_others_are_one_by_one(
    client, matrix, requester, site_a1, site_manager
):
    routine = [raise_request(requester, site_a1, amount=str(1000 + i)) for i in range(3)]
    material = raise_request(requester, site_a1, amount="7000", title="Material one")
    client.force_login(site_manager)

    response = client.get(BULK)

    page = response.text
    assert response.status_code == 200
    assert "Routine purchases" in page
    assert all(f'value="{r.pk}"' in page for r in routine)
    assert f'value="{material.pk}"' not in page
    assert "Material one" in page and "has no fast path" in page
    assert "€3,003.00" in page  # the group's total


def test_bulk_page_shows_money_and_due_times_as_people_read_them(
    client, matrix, requester, site_a1, site_manager
):
    routine = raise_request(requester, site_a1, amount="3120.5")
    client.force_login(site_manager)

    page = client.get(BULK).text

    assert "€3,120.50" in page and "3120.50 EUR" not in page
    routine.refresh_from_db()
    assert routine.due_at and formatting.moment(routine.due_at, site_a1) in page
    assert "(1 request)" in page


def test_bulk_approval_approves_each_selected_item_with_one_comment(
    client, matrix, requester, site_a1, site_manager
):
    routine = [raise_request(requester, site_a1, amount=str(1000 + i)) for i in range(3)]
    client.force_login(site_manager)
    group = f"purchase:{routine[0].rule_id}"

    response = client.post(
        BULK,
        {"group": group, "requests": [r.pk for r in routine[:2]], "comment": "Weekly restock"},
    )

    assert response.status_code == 200
    assert "2 approved" in response.text
    assert [_reload(r).state for r in routine] == [
        RequestState.APPROVED,
        RequestState.APPROVED,
        RequestState.IN_REVIEW,
    ]
    comments = set(Decision.objects.filter(actor=site_manager).values_list("comment", flat=True))
    assert comments == {"Weekly restock"}


def test_bulk_approval_refuses_flagged_items(client, matrix, requester, site_a1, site_manager):
    flagged = raise_request(
        requester,
        site_a1,
        amount="1000",
        counterparty_ref="res.partner,999",
        details={"counterparty_since": timezone.now().date().isoformat()},
    )
    routine = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)
    group = f"purchase:{routine.rule_id}"

    page = client.get(BULK).text
    response = client.post(
        BULK, {"group": group, "requests": [flagged.pk, routine.pk], "comment": "ok"}
    )

    assert "Risk flags (New vendor or customer)" in page
    assert response.status_code == 400
    assert "can no longer be bulk-approved" in response.text
    assert _reload(flagged).state == RequestState.IN_REVIEW
    assert _reload(routine).state == RequestState.IN_REVIEW


def test_bulk_approval_needs_a_comment_and_a_selection(
    client, matrix, requester, site_a1, site_manager
):
    routine = raise_request(requester, site_a1, amount="1000")
    client.force_login(site_manager)

    response = client.post(BULK, {"group": f"purchase:{routine.rule_id}", "comment": ""})

    assert response.status_code == 400
    assert "Select at least one request." in response.text
    assert "Write the comment for the approvals." in response.text
    assert _reload(routine).state == RequestState.IN_REVIEW


def test_bulk_reports_an_item_someone_else_decided_meanwhile(
    client, matrix, requester, site_a1, site_manager
):
    first, second = (raise_request(requester, site_a1, amount=str(a)) for a in (1000, 1100))
    client.force_login(site_manager)
    client.get(BULK)
    from approvals.views import _bulk_approve_one

    services.request_withdraw(actor=requester, request_id=second.pk)

    outcomes = [_bulk_approve_one(site_manager, r.pk, "Restock") for r in (first, second)]

    assert [o["ok"] for o in outcomes] == [True, False]
    assert "withdrawn" in outcomes[1]["message"]


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_request_page_renders_with_a_constant_number_of_queries(
    client, matrix, requester, site_a1, site_manager
):
    client.force_login(site_manager)
    first = raise_request(requester, site_a1, amount="1000")
    few = _queries(client, reverse("approvals:detail", args=[first.pk]))
    for i in range(6):
        earlier = raise_request(requester, site_a1, amount=str(1100 + i))
        services.request_reject(actor=site_manager, request_id=earlier.pk, reason="Not now")
    later = raise_request(requester, site_a1, amount="1000")

    many = _queries(client, reverse("approvals:detail", args=[later.pk]))

    assert few == many


def test_request_page_queries_stay_few(client, matrix, requester, site_a1, site_manager):
    """Tiers, votes and the site's grants are each read once; who is pending and the colleagues
    come with the site's grants, and a request without attachments does not ask for them.
    Decision support adds two: the similar requests counted in one query, and their last
    decisions."""
    client.force_login(site_manager)
    waiting = raise_request(requester, site_a1, amount="6000")

    assert _queries(client, reverse("approvals:detail", args=[waiting.pk])) <= 16


@pytest.mark.parametrize("hours, median", [([5, 1, 3], 3.0), ([4, 1, 2, 8], 4.0)])
def test_trend_median_is_the_middle_span_the_later_for_an_even_count(
    matrix, requester, site_a1, site_manager, hours, median
):
    from datetime import timedelta

    from approvals import request_selectors

    now = timezone.now()
    for span in hours:
        earlier = raise_request(requester, site_a1, amount="900")
        services.request_reject(actor=site_manager, request_id=earlier.pk, reason="Not now")
        ApprovalRequest.objects.filter(pk=earlier.pk).update(
            submitted_at=now - timedelta(hours=span + 1), decided_at=now - timedelta(hours=1)
        )
    current = raise_request(requester, site_a1, amount="1000")

    trend = request_selectors.site_trend(current)

    assert (trend.decided, trend.rejected, trend.median_hours) == (len(hours), len(hours), median)


# --- handing a decision on --------------------------------------------------------------------


def test_site_manager_hands_the_decision_to_a_colleague(
    client, purchase, site_manager, site_a1, stranger
):
    from approvals.models import Delegation
    from sites.roles import Role
    from tests.factories import grant

    grant(stranger, Role.SITE_MANAGER, site=site_a1)
    deputy = stranger
    client.force_login(site_manager)
    assert 'id="delegate-form"' in _page(client, purchase.pk).text
    until = (timezone.now() + timezone.timedelta(days=2)).date()

    response = client.post(
        reverse("approvals:delegate", args=[purchase.pk]),
        {"delegate": deputy.pk, "until": until.isoformat(), "note": "On leave"},
    )

    assert response.status_code == 302
    delegation = Delegation.objects.get(delegator=site_manager)
    assert (delegation.delegate, delegation.site, delegation.kind) == (deputy, site_a1, "purchase")
    assert delegation.max_amount == purchase.amount_base


def test_delegating_needs_a_colleague_and_a_day(client, purchase, site_manager):
    from approvals.models import Delegation

    client.force_login(site_manager)

    response = client.post(reverse("approvals:delegate", args=[purchase.pk]), {"until": ""})

    assert response.status_code == 400
    assert "Choose the colleague who decides in your place." in response.text
    assert "Say until when." in response.text
    assert not Delegation.objects.exists()


def test_requester_is_told_why_they_cannot_delegate(client, purchase, requester):
    client.force_login(requester)

    page = _page(client, purchase.pk).text
    refused = client.post(reverse("approvals:delegate", args=[purchase.pk]), {})

    assert 'id="delegate-form"' not in page
    assert "You raised this request, so someone else must decide it." in page
    assert refused.status_code == 403
    assert "You raised this request, so someone else must decide it." in refused.text


def test_a_stand_in_may_decide_but_not_hand_on_and_is_told_why_as_the_page_says(
    client, purchase, site_manager, site_a1
):
    from django.utils.html import escape

    from approvals import policies
    from approvals.models import Delegation

    stranger = persona("stand.in", Role.REQUESTER, site=site_a1)

    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=stranger,
        starts_at=timezone.now() - timezone.timedelta(hours=1),
        ends_at=timezone.now() + timezone.timedelta(days=3),
    )
    client.force_login(stranger)
    until = (timezone.now() + timezone.timedelta(days=2)).date().isoformat()

    page = _page(client, purchase.pk)
    refused = client.post(
        reverse("approvals:delegate", args=[purchase.pk]),
        {"delegate": site_manager.pk, "until": until},
    )

    reason = policies.why_not_delegate(stranger, purchase)
    assert reason
    assert page.context["actions"]["approve"] is None
    assert page.context["actions"]["delegate"] == reason
    assert 'id="delegate-form"' not in page.text
    assert refused.status_code == 403
    assert escape(reason) in refused.text
    assert not Delegation.objects.filter(delegator=stranger).exists()


# --- links on the page lead somewhere ---------------------------------------------------------


def test_printable_trail_is_linked_only_for_those_who_may_open_it(
    client, purchase, site_manager, auditor
):
    trail = reverse("audit:trail", args=["request", purchase.pk])
    client.force_login(site_manager)
    assert trail not in _page(client, purchase.pk).text
    assert client.get(trail).status_code == 404

    client.force_login(auditor)
    assert trail in _page(client, purchase.pk).text
    assert client.get(trail).status_code == 200


def test_delegate_form_offers_its_day_in_the_format_a_date_input_shows(
    client, purchase, site_manager
):
    from zoneinfo import ZoneInfo

    client.force_login(site_manager)
    today = timezone.now().astimezone(ZoneInfo(purchase.site.time_zone)).date()
    suggested = today + timezone.timedelta(days=3)

    page = _page(client, purchase.pk).text

    assert f'name="until" value="{suggested.isoformat()}"' in page


@pytest.mark.parametrize("until", ["9999-12-31", "2999-01-01"])
def test_delegating_until_a_far_day_is_refused_and_changes_nothing(
    client, purchase, site_manager, stranger, until
):
    from approvals.models import Delegation
    from sites.roles import Role
    from tests.factories import grant

    grant(stranger, Role.SITE_MANAGER, site=purchase.site)
    client.force_login(site_manager)

    response = client.post(
        reverse("approvals:delegate", args=[purchase.pk]),
        {"delegate": stranger.pk, "until": until},
    )

    assert response.status_code == 400
    assert "Choose a day within a year" in response.text
    assert not Delegation.objects.exists()


def test_request_page_queries_do_not_grow_with_the_vendors_history(
    client, matrix, requester, site_a1, site_manager, regional_manager
):
    client.force_login(regional_manager)
    first = raise_request(requester, site_a1, amount="6000")
    services.request_approve(actor=site_manager, request_id=first.pk, comment="Tier one")
    few = _queries(client, reverse("approvals:detail", args=[first.pk]))
    for i in range(5):
        earlier = raise_request(requester, site_a1, amount=str(6100 + i))
        services.request_approve(actor=site_manager, request_id=earlier.pk, comment="Fine")
        services.request_reject(actor=regional_manager, request_id=earlier.pk, reason="No")
    later = raise_request(requester, site_a1, amount="6000")
    services.request_approve(actor=site_manager, request_id=later.pk, comment="Tier one")

    page = client.get(reverse("approvals:detail", args=[later.pk]))
    many = _queries(client, reverse("approvals:detail", args=[later.pk]))

    # The regional manager decides the second tier of both, with the first tier's vote shown.
    assert page.context["option"] is not None
    assert len(page.context["path"][0].decisions) == 1
    assert len(page.context["earlier"]) == 5
    assert many == few


def test_each_vote_shows_its_time_in_the_sites_zone(
    client, purchase, site_manager, regional_manager
):
    from zoneinfo import ZoneInfo

    services.request_approve(actor=site_manager, request_id=purchase.pk, comment="Tier one")
    vote = Decision.objects.get(request=purchase, actor=site_manager)
    local = vote.at.astimezone(ZoneInfo(purchase.site.time_zone))
    client.force_login(regional_manager)

    page = _page(client, purchase.pk).text

    assert f"today {local:%H:%M} {local.tzname()} — “Tier one”" in page


def test_delegate_form_offers_exactly_the_colleagues_the_service_accepts(
    client, purchase, site_manager, requester, regional_manager, outsider, site_a1, site_a2
):
    """The page reads the colleagues in the same query as the people pending: the same people
    as selectors.role_holders, which the delegation service checks (here: a site role, a region
    role, a role only at the sister site, one ended, one not begun, one of a deactivated person
    and one at another region)."""
    from approvals.models import HeldAt
    from approvals.selectors import role_holders
    from tests.factories import UserFactory, grant

    now = timezone.now()
    grant(UserFactory(username="auditor.a1"), Role.AUDITOR, site=site_a1)
    grant(UserFactory(username="sister.site"), Role.SITE_MANAGER, site=site_a2)
    grant(
        UserFactory(username="ended"),
        Role.FINANCE,
        site=site_a1,
        valid_from=now - timezone.timedelta(days=9),
        valid_to=now - timezone.timedelta(days=1),
    )
    grant(
        UserFactory(username="not.yet"),
        Role.FINANCE,
        site=site_a1,
        valid_from=now + timezone.timedelta(days=1),
    )
    gone = UserFactory(username="gone")
    grant(gone, Role.SITE_MANAGER, site=site_a1)
    gone.is_active = False
    gone.save()
    client.force_login(site_manager)

    offered = _page(client, purchase.pk).context["delegate_form"].fields["delegate"].choices
    accepted = role_holders(list(Role), HeldAt.SITE, site_a1).exclude(
        pk__in=[site_manager.pk, requester.pk]
    )

    assert [pk for pk, _ in offered][1:] == [person.pk for person in accepted]
    assert {"auditor.a1", "regional.manager"} <= {person.username for person in accepted}
    assert not {"sister.site", "ended", "not.yet", "gone", "outsider"} & {
        person.username for person in accepted
    }
