"""The life of a request through the services: tiers, quorum, fast path, delegation, drift."""

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalRequest,
    Decision,
    Delegation,
    Outcome,
    RequestState,
    StepState,
)
from approvals.selectors import inbox_for, sampled_for_review
from approvals.services import review
from approvals.specs import version_spec
from portal.audit.models import AuditEvent
from portal.core.errors import Conflict
from sites.roles import Role
from tests.approvals.conftest import raise_request
from tests.conftest import persona
from tests.factories import grant

D = Decimal


def _reload(request):
    return ApprovalRequest.objects.get(pk=request.pk)


def _steps(request):
    return [(s.position, s.role, s.state) for s in request.steps.order_by("position")]


def test_regional_manager_approves_second_tier(
    matrix, requester, site_a1, site_manager, regional_manager
):
    target = raise_request(requester, site_a1, amount="6000")
    assert _steps(target) == [
        (1, Role.SITE_MANAGER, StepState.ACTIVE),
        (2, Role.REGIONAL_MANAGER, StepState.WAITING),
    ]

    services.request_approve(actor=site_manager, request_id=target.pk)
    assert _steps(target)[1][2] == StepState.ACTIVE
    services.request_approve(actor=regional_manager, request_id=target.pk, comment="Fine")

    target = _reload(target)
    assert target.state == RequestState.APPROVED
    assert target.due_at is None
    assert [d.actor for d in target.decisions.all()] == [site_manager, regional_manager]
    assert all(d.policy_version == matrix["global"] for d in target.decisions.all())


def test_quorum_needs_two_regional_managers(matrix, requester, site_a1, regional_manager, staffed):
    target = raise_request(requester, site_a1, kind="expedited_freight", amount="300")

    services.request_approve(actor=regional_manager, request_id=target.pk)
    assert _reload(target).state == RequestState.IN_REVIEW
    with pytest.raises(PermissionDenied):
        services.request_approve(actor=regional_manager, request_id=target.pk)

    services.request_approve(actor=staffed["regional_manager_2"], request_id=target.pk)
    assert _reload(target).state == RequestState.APPROVED


def test_parallel_tiers_open_together_and_both_must_approve(
    matrix, requester, site_a1, site_manager, regional_manager, finance
):
    target = raise_request(requester, site_a1, amount="60000")
    services.request_approve(actor=site_manager, request_id=target.pk)

    active = [role for _, role, state in _steps(target) if state == StepState.ACTIVE]
    assert active == [Role.REGIONAL_MANAGER, Role.FINANCE]
    services.request_approve(actor=finance, request_id=target.pk)
    assert _reload(target).state == RequestState.IN_REVIEW
    services.request_approve(actor=regional_manager, request_id=target.pk)
    assert _reload(target).state == RequestState.APPROVED


def test_rejecting_any_tier_ends_the_request_and_closes_the_rest(
    matrix, requester, site_a1, site_manager, finance
):
    target = raise_request(requester, site_a1, amount="60000")
    services.request_approve(actor=site_manager, request_id=target.pk)

    services.request_reject(actor=finance, request_id=target.pk, reason="No budget left")

    target = _reload(target)
    assert target.state == RequestState.REJECTED
    assert {state for _, _, state in _steps(target)} == {
        StepState.APPROVED,
        StepState.REJECTED,
        StepState.CLOSED,
    }


def test_reject_needs_a_reason(matrix, requester, site_a1, site_manager):
    target = raise_request(requester, site_a1, amount="1000")

    with pytest.raises(ValidationError, match="Say why"):
        services.request_reject(actor=site_manager, request_id=target.pk, reason="  ")
    assert _reload(target).state == RequestState.IN_REVIEW


def test_tier_that_requires_a_comment_refuses_a_bare_approval(matrix, requester, site_a1, finance):
    target = raise_request(
        requester, site_a1, kind="credit_exception", amount="2500", customer_class="standard"
    )

    with pytest.raises(ValidationError, match="needs a comment"):
        services.request_approve(actor=finance, request_id=target.pk)
    services.request_approve(actor=finance, request_id=target.pk, comment="Paid on time for years")
    assert _reload(target).state == RequestState.APPROVED


def test_fast_path_records_rule_and_evidence(matrix, requester, site_a1):
    target = raise_request(requester, site_a1, amount="120")

    assert target.state == RequestState.APPROVED
    decision = Decision.objects.get(request=target)
    assert decision.outcome == Outcome.AUTO_APPROVE
    assert decision.actor is None
    assert decision.evidence["rule"] == "Routine purchases"
    assert Decimal(decision.evidence["auto_approve_below"]) == D("500")
    assert AuditEvent.objects.filter(action="request.auto_approved", object_id=target.pk).exists()


def test_fast_path_sample_is_about_the_configured_share_and_reproducible(matrix):
    version = matrix["global"]
    picks = [review.sampled(SimpleNamespace(pk=pk), version) for pk in range(1, 4001)]

    # 5 % of 4,000 is 200; the hash-based sampler must land close and answer the same again.
    assert 160 <= sum(picks) <= 240
    assert picks == [review.sampled(SimpleNamespace(pk=pk), version) for pk in range(1, 4001)]


def _publish_sample_rate(version, rate: str):
    spec = replace(version_spec(version), fast_path_sample_rate=D(rate))
    return services.policy_publish(actor=None, policy=version.policy, spec=spec)


def test_finance_completes_post_event_review_of_a_sampled_approval(
    matrix, requester, site_a1, finance, site_manager
):
    _publish_sample_rate(matrix["global"], "1")
    sampled = raise_request(requester, site_a1, amount="50")
    assert sampled.sampled_for_review
    assert list(sampled_for_review(finance)) == [sampled]
    with pytest.raises(PermissionDenied):
        services.fast_path_review_complete(actor=site_manager, request_id=sampled.pk, comment="")

    services.fast_path_review_complete(actor=finance, request_id=sampled.pk, comment="Looks right")
    assert list(sampled_for_review(finance)) == []
    with pytest.raises(Conflict):
        services.fast_path_review_complete(actor=finance, request_id=sampled.pk, comment="again")


def test_unsampled_fast_path_needs_no_review(matrix, requester, site_a1, finance):
    _publish_sample_rate(matrix["global"], "0")

    assert not raise_request(requester, site_a1, amount="50").sampled_for_review
    assert list(sampled_for_review(finance)) == []


def test_decision_under_delegation_records_on_behalf_of(
    matrix, requester, site_a1, site_manager, colleague
):
    delegation = services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=14),
    )
    target = raise_request(requester, site_a1, amount="1000")
    assert target in inbox_for(colleague).requests

    decision = services.request_approve(actor=colleague, request_id=target.pk)

    assert (decision.actor, decision.on_behalf_of, decision.delegation) == (
        colleague,
        site_manager,
        delegation,
    )
    assert str(decision) == "Approved by colleague on behalf of site.manager"
    event = AuditEvent.objects.get(action="request.approved", object_id=target.pk)
    assert (event.actor, event.on_behalf_of) == (colleague, site_manager)


def test_delegation_does_not_cascade(matrix, requester, site_a1, site_a2, site_manager, colleague):
    # Both delegates work where the approvals are: the middle decides at A2 and reads A1.
    middle = persona("middle", Role.SITE_MANAGER, site=site_a2)
    grant(middle, Role.AUDITOR, site=site_a1)
    now = timezone.now()
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=middle,
        starts_at=now,
        ends_at=now + timedelta(days=7),
    )
    services.delegation_create(
        actor=middle,
        delegator=middle,
        delegate=colleague,
        starts_at=now,
        ends_at=now + timedelta(days=7),
    )
    target = raise_request(requester, site_a1, amount="1000")

    assert target in inbox_for(middle).requests
    assert target not in inbox_for(colleague).requests
    with pytest.raises(PermissionDenied):
        services.request_approve(actor=colleague, request_id=target.pk)


def test_site_manager_hands_their_tier_to_a_colleague_narrowed_to_the_request(
    matrix, requester, site_a1, site_manager
):
    deputy = persona("deputy", Role.SITE_MANAGER, site=site_a1)
    target = raise_request(requester, site_a1, amount="1000")
    ends = timezone.now() + timedelta(days=3)

    delegation = services.request_delegate(
        actor=site_manager, request_id=target.pk, delegate="deputy", ends_at=ends, note=""
    )

    assert (delegation.delegator, delegation.delegate, delegation.site) == (
        site_manager,
        deputy,
        site_a1,
    )
    assert (delegation.kind, delegation.max_amount) == ("purchase", target.amount_base)
    assert delegation.note == f"For {target.reference}"
    assert AuditEvent.objects.filter(
        action="delegation.created", object_id=str(delegation.pk)
    ).exists()


def test_request_delegate_refuses_a_stand_in_a_final_request_and_a_stranger_colleague(
    matrix, requester, site_a1, site_manager, colleague
):
    from approvals import policies
    from approvals.models import Delegation

    target = raise_request(requester, site_a1, amount="1000")
    ends = timezone.now() + timedelta(days=3)
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=timezone.now(),
        ends_at=ends,
    )
    before = Delegation.objects.count()

    with pytest.raises(PermissionDenied) as stand_in:
        services.request_delegate(
            actor=colleague, request_id=target.pk, delegate="site.manager", ends_at=ends
        )
    assert str(stand_in.value) == policies.why_not_delegate(colleague, target)
    with pytest.raises(ValidationError) as nobody:
        services.request_delegate(
            actor=site_manager, request_id=target.pk, delegate="nobody", ends_at=ends
        )
    services.request_withdraw(actor=requester, request_id=target.pk)
    with pytest.raises(Conflict, match="there is nothing to hand on"):
        services.request_delegate(
            actor=site_manager, request_id=target.pk, delegate="requester", ends_at=ends
        )

    assert "No colleague of that name holds a role at" in nobody.value.message_dict["delegate"][0]
    assert Delegation.objects.count() == before


def test_delegation_limits_by_site_kind_amount_and_period(
    matrix, requester, site_a1, site_a2, site_manager, colleague, staffed
):
    now = timezone.now()
    services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=now,
        ends_at=now + timedelta(days=7),
        site=site_a1,
        kind="purchase",
        max_amount=D("2000"),
    )
    small = raise_request(requester, site_a1, amount="1000")
    large = raise_request(requester, site_a1, amount="3000")
    transfer = raise_request(requester, site_a1, kind="transfer", amount="100")

    assert inbox_for(colleague).requests == [small]
    assert large in inbox_for(site_manager).requests
    assert transfer in inbox_for(site_manager).requests
    later = now + timedelta(days=8)
    assert inbox_for(colleague, at=later).requests == []


def test_revoked_delegation_stops_at_once(matrix, requester, site_a1, site_manager, colleague):
    delegation = services.delegation_create(
        actor=site_manager,
        delegator=site_manager,
        delegate=colleague,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=7),
    )
    target = raise_request(requester, site_a1, amount="1000")

    services.delegation_revoke(actor=site_manager, delegation_id=delegation.pk)

    assert inbox_for(colleague).requests == []
    with pytest.raises(PermissionDenied):
        services.request_approve(actor=colleague, request_id=target.pk)


def test_only_the_delegator_or_their_administrator_manages_a_delegation(
    matrix, site_manager, stranger, regional_manager, administrator
):
    window = {"starts_at": timezone.now(), "ends_at": timezone.now() + timedelta(days=3)}
    with pytest.raises(PermissionDenied):
        services.delegation_create(
            actor=regional_manager, delegator=site_manager, delegate=stranger, **window
        )

    handed = services.delegation_hand_over(
        actor=administrator,
        delegators=[site_manager],
        delegate=regional_manager,
        until=window["ends_at"],
    )
    assert handed[0].created_by == administrator
    assert handed[0].delegator == site_manager


def _delegations_written() -> tuple[int, int]:
    created = AuditEvent.objects.filter(action="delegation.created")
    return Delegation.objects.count(), created.count()


def _hand_over(delegator, delegate, **narrowing):
    now = timezone.now()
    return services.delegation_create(
        actor=delegator,
        delegator=delegator,
        delegate=delegate,
        starts_at=now,
        ends_at=now + timedelta(days=7),
        **narrowing,
    )


def _refusal(delegator, delegate, **narrowing) -> list[str]:
    """Expect the delegation to be refused, with nothing written; the reasons given."""
    before = _delegations_written()
    with pytest.raises(ValidationError) as refused:
        _hand_over(delegator, delegate, **narrowing)
    assert _delegations_written() == before
    return refused.value.message_dict["delegate"]


def test_delegate_from_another_region_is_refused_and_nothing_is_written(
    matrix, site_a1, site_manager, outsider
):
    name = outsider.get_full_name()

    assert _refusal(site_manager, outsider) == [
        f"{name} holds no role in Region A, where these approvals are decided: "
        "choose someone who works there."
    ]
    assert _refusal(site_manager, outsider, site=site_a1) == [
        f"{name} holds no role at A1, so they cannot take over approvals there."
    ]


def test_delegate_must_hold_a_role_at_the_delegations_own_site(
    matrix, site_a1, site_a2, site_manager, staffed
):
    peer = staffed["site_manager_a2"]

    assert _refusal(site_manager, peer, site=site_a1) == [
        f"{peer.get_full_name()} holds no role at A1, so they cannot take over approvals there."
    ]
    assert _hand_over(site_manager, peer, site=site_a2).delegate == peer
    assert _hand_over(site_manager, peer).site is None


def test_delegate_must_work_in_every_region_the_delegator_decides_in(
    matrix, region_b, site_b1, regional_manager, colleague
):
    grant(regional_manager, Role.REGIONAL_MANAGER, region=region_b)

    assert _refusal(regional_manager, colleague) == [
        f"{colleague.get_full_name()} holds no role in Region B, where these approvals are "
        "decided: choose someone who works there, or hand over only the approvals of a site "
        "where they work."
    ]
    assert _refusal(regional_manager, colleague, site=site_b1)


def test_someone_who_decides_nothing_has_nothing_to_hand_over(matrix, auditor, colleague):
    assert _refusal(auditor, colleague) == [
        f"{auditor.get_full_name()} decides no approvals at any open site, so there is nothing "
        "to hand over."
    ]


def test_hand_over_to_someone_from_another_region_writes_nothing(
    matrix, administrator, site_manager, staffed, outsider
):
    before = _delegations_written()
    with pytest.raises(ValidationError) as refused:
        services.delegation_hand_over(
            actor=administrator,
            delegators=[staffed["site_manager_a2"], site_manager],
            delegate=outsider,
            until=timezone.now() + timedelta(days=3),
        )

    assert "holds no role in Region A" in refused.value.messages[0]
    assert _delegations_written() == before


def test_drift_sends_an_approved_request_back_to_review(matrix, requester, site_a1, site_manager):
    target = raise_request(
        requester,
        site_a1,
        amount="1000",
        odoo_id=42,
        odoo_snapshot={"amount": "1000", "lines": [["SKU-1", 10, "100.00"]]},
    )
    services.request_approve(actor=site_manager, request_id=target.pk)
    assert _reload(target).state == RequestState.APPROVED

    went_back = services.request_odoo_changed(
        request_id=target.pk,
        change=services.OdooChange(
            amount=D("1400"),
            currency="EUR",
            lines=[["SKU-1", 14, "100.00"]],
            snapshot={"amount": "1400", "lines": [["SKU-1", 14, "100.00"]]},
        ),
    )

    target = _reload(target)
    assert went_back
    assert target.state == RequestState.IN_REVIEW
    assert target.round == 2
    assert target.amount == D("1400")
    assert {c["field"] for c in target.drift[-1]["changes"]} == {"amount", "lines"}
    assert target.policy_version == matrix["global"]
    assert target in inbox_for(site_manager).requests
    # The first round's decision stays; a new round needs a new one.
    assert target.decisions.count() == 1
    services.request_approve(actor=site_manager, request_id=target.pk)
    assert _reload(target).state == RequestState.APPROVED


def test_change_within_tolerance_is_not_drift(matrix, requester, site_a1):
    target = raise_request(
        requester, site_a1, amount="1000", odoo_id=43, odoo_snapshot={"lines": [["A", 1]]}
    )

    went_back = services.request_odoo_changed(
        request_id=target.pk,
        change=services.OdooChange(
            amount=D("1010"), currency="EUR", lines=[["A", 1]], snapshot={"lines": [["A", 1]]}
        ),
    )

    assert not went_back
    assert _reload(target).round == 1


def test_rejected_request_is_resubmitted_as_a_linked_revision(
    matrix, requester, site_a1, site_manager
):
    first = raise_request(requester, site_a1, amount="3000")
    services.request_reject(actor=site_manager, request_id=first.pk, reason="Too much")

    second = services.request_resubmit(
        actor=requester, request_id=first.pk, reason="Halved the quantity", amount=D("1500")
    )
    second = services.request_submit(actor=requester, request_id=second.pk)

    assert (second.revision, second.revision_of, second.amount) == (2, first, D("1500"))
    assert second.reference.endswith("-r2")
    assert _reload(first).state == RequestState.REJECTED
    assert first.decisions.count() == 1
    with pytest.raises(PermissionDenied):
        services.request_resubmit(actor=requester, request_id=first.pk, reason="Again")


def test_withdrawn_request_leaves_every_inbox(matrix, requester, site_a1, site_manager):
    target = raise_request(requester, site_a1, amount="1000")

    services.request_withdraw(actor=requester, request_id=target.pk, reason="Not needed")

    assert _reload(target).state == RequestState.WITHDRAWN
    assert inbox_for(site_manager).requests == []
    with pytest.raises(Conflict, match="already withdrawn"):
        services.request_approve(actor=site_manager, request_id=target.pk)


def test_people_with_something_to_do_get_an_email(
    matrix, requester, site_a1, site_manager, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        target = raise_request(requester, site_a1, amount="1000")

    assert [m.to for m in mailoutbox] == [[site_manager.email]]
    body = mailoutbox[0].body
    assert target.reference in body
    # The due time in the site's zone, as people say it ("tomorrow 16:00 CET").
    assert re.search(r"Due: +\S.* CES?T$", body, re.M), body
    assert f"/approvals/{target.pk}/" in body

    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(actor=site_manager, request_id=target.pk)
    assert mailoutbox[-1].to == [requester.email]
    assert "approved" in mailoutbox[-1].subject


def test_invalid_request_is_refused_and_nothing_is_written(requester, site_a1, matrix):
    count = ApprovalRequest.objects.count()

    with pytest.raises(ValidationError) as error:
        services.request_create(
            requester=requester,
            kind="transfer",
            site=site_a1,
            title="Move stock",
            reason="",
            amount=D("-1"),
            currency="eur",
            details={},
        )

    assert set(error.value.message_dict) >= {
        "amount",
        "currency",
        "reason",
        "category",
        "details.destination_site",
    }
    assert ApprovalRequest.objects.count() == count


def test_every_transition_is_in_the_audit_ledger(matrix, requester, site_a1, site_manager):
    target = raise_request(requester, site_a1, amount="1000")
    services.request_approve(actor=site_manager, request_id=target.pk, comment="OK")

    actions = list(
        AuditEvent.objects.filter(
            object_id=str(target.pk), object_type="approvals.approvalrequest"
        ).values_list("action", flat=True)
    )
    assert actions == [
        "request.created",
        "request.submitted",
        "request.in_review",
        "decision.approve",
        "request.approved",
    ]


def test_a_rejected_request_from_odoo_is_raised_again_as_its_next_revision(
    matrix, requester, site_a1, site_manager
):
    first = raise_request(requester, site_a1, amount="3000", odoo_id=314)
    services.request_reject(actor=site_manager, request_id=first.pk, reason="Too much")

    second = services.request_resubmit(actor=requester, request_id=first.pk, reason="Halved")

    assert (second.odoo_id, second.revision, second.revision_of) == (314, 2, first)


def test_a_flagged_request_under_a_rule_without_tiers_is_refused_and_stays_a_draft(
    matrix, requester, site_a1
):
    from approvals.specs import RuleSpec, VersionSpec

    policy = services.policy_create(actor=None, name="Tierless", site=site_a1)
    services.policy_publish(
        actor=None,
        policy=policy,
        spec=VersionSpec(
            rules=(
                RuleSpec(
                    name="Everything small is fine",
                    kinds=("purchase",),
                    max_amount=D("100"),
                    auto_approve_below=D("100"),
                ),
            )
        ),
    )
    draft = raise_request(
        requester, site_a1, amount="50", submit=False, details={"counterparty_since": "2026-03-01"}
    )

    with pytest.raises(ValidationError, match="names nobody to decide"):
        services.request_submit(actor=requester, request_id=draft.pk)
    assert _reload(draft).state == RequestState.DRAFT


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the ledger lock is a PostgreSQL advisory lock"
)
def test_a_final_approval_locks_the_ledger_only_for_its_own_appends(
    matrix, requester, site_manager, site_a1
):
    # Every append waits for the lock until the appending transaction commits: work done
    # after the lock is taken holds up every other decision.
    request = raise_request(requester, site_a1, amount="1000")
    with CaptureQueriesContext(connection) as queries:
        services.request_approve(actor=site_manager, request_id=request.pk)

    statements = [query["sql"] for query in queries.captured_queries]
    locks = [n for n, sql in enumerate(statements) if "pg_advisory_xact_lock" in sql]
    assert len(locks) == 1
    after_lock = [
        sql
        for sql in statements[locks[0] + 1 :]
        if not sql.startswith(("RELEASE SAVEPOINT", "COMMIT"))
    ]
    assert len(after_lock) == 2, after_lock
    assert all('"audit_auditevent"' in sql for sql in after_lock)
    assert _reload(request).state == RequestState.APPROVED
    assert list(
        AuditEvent.objects.filter(object_id=str(request.pk))
        .order_by("-sequence")
        .values_list("action", flat=True)[:2]
    ) == ["request.approved", "decision.approve"]


def test_history_written_silenced_mails_nobody(
    matrix, requester, site_a1, site_manager, mailoutbox, django_capture_on_commit_callbacks
):
    from approvals import notifications

    with django_capture_on_commit_callbacks(execute=True), notifications.silenced():
        target = raise_request(requester, site_a1, amount="1000")
        services.request_approve(actor=site_manager, request_id=target.pk)

    assert mailoutbox == []
    assert not notifications.is_silenced()
    with django_capture_on_commit_callbacks(execute=True):
        raise_request(requester, site_a1, amount="1000")
    assert [m.to for m in mailoutbox] == [[site_manager.email]]
