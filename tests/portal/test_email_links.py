"""Approval links in e-mails: signed, single-use, short-lived, and never decided by a GET."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals import email_links
from approvals.models import Decision, RequestState
from portal.audit.models import AuditEvent
from tests.approvals import conftest as approval_fixtures
from tests.approvals.conftest import raise_request

_working_morning = approval_fixtures._working_morning
matrix = approval_fixtures.matrix
staffed = approval_fixtures.staffed


@pytest.fixture
def routine(matrix, requester, site_a1):
    return raise_request(requester, site_a1, amount="1000")


def _link(request, person):
    step = request.steps.get(state="active")
    return reverse("approvals:email_link", args=[email_links.make_token(step, person)])


def test_opening_the_link_only_shows_a_confirmation(client, routine, site_manager):
    client.force_login(site_manager)

    response = client.get(_link(routine, site_manager))

    assert response.status_code == 200
    assert "Confirm decision" in response.text
    assert routine.reference in response.text
    assert not Decision.objects.filter(request=routine).exists()


def test_a_signed_out_scanner_is_sent_to_sign_in_and_nothing_is_decided(
    client, routine, site_manager
):
    response = client.get(_link(routine, site_manager))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not Decision.objects.filter(request=routine).exists()


def test_the_decision_is_a_post_and_the_link_then_works_no_more(client, routine, site_manager):
    client.force_login(site_manager)
    link = _link(routine, site_manager)

    response = client.post(link, {"outcome": "approve", "comment": "From my phone"})

    assert response.status_code == 302
    routine.refresh_from_db()
    assert routine.state == RequestState.APPROVED
    assert AuditEvent.objects.filter(action="approval_link.used").count() == 1
    again = client.get(link)
    assert again.status_code == 400
    assert "already been used" in again.text


def test_reject_through_the_link_needs_a_reason(client, routine, site_manager):
    client.force_login(site_manager)

    response = client.post(_link(routine, site_manager), {"outcome": "reject", "comment": ""})

    assert response.status_code == 400
    assert "Say why the request is rejected." in response.text
    routine.refresh_from_db()
    assert routine.state == RequestState.IN_REVIEW


def test_a_link_for_someone_else_is_refused(client, routine, site_manager, regional_manager):
    client.force_login(regional_manager)

    response = client.post(_link(routine, site_manager), {"outcome": "approve"})

    assert response.status_code == 400
    assert "sent to someone else" in response.text
    assert not Decision.objects.filter(request=routine).exists()


def test_a_tampered_link_is_refused(client, routine, site_manager):
    client.force_login(site_manager)
    step = routine.steps.get(state="active")
    forged = signing.dumps({"s": step.pk, "u": site_manager.pk, "n": "x"}, salt="another-salt")

    response = client.get(reverse("approvals:email_link", args=[forged]))

    assert response.status_code == 400
    assert "not valid" in response.text


def test_an_expired_link_is_refused(client, routine, site_manager, settings):
    settings.APPROVAL_LINK_MAX_AGE_HOURS = 1
    link = _link(routine, site_manager)
    client.force_login(site_manager)

    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        response = client.post(link, {"outcome": "approve"})

    assert response.status_code == 400
    assert "expired" in response.text
    assert not Decision.objects.filter(request=routine).exists()


def test_above_the_amount_the_approver_types_their_password(
    client, routine, site_manager, settings
):
    settings.APPROVAL_LINK_REAUTH_AMOUNT = 500
    client.force_login(site_manager)
    link = _link(routine, site_manager)

    assert "Your password" in client.get(link).text
    wrong = client.post(link, {"outcome": "approve", "password": "guess"})
    assert wrong.status_code == 400
    assert "Enter your password to decide this amount." in wrong.text
    assert not Decision.objects.filter(request=routine).exists()

    right = client.post(link, {"outcome": "approve", "password": "correct-horse-battery"})

    assert right.status_code == 302
    assert Decision.objects.filter(request=routine, actor=site_manager).exists()


def test_a_link_to_a_request_decided_meanwhile_answers_409(
    client, routine, site_manager, requester
):
    from approvals import services

    client.force_login(site_manager)
    link = _link(routine, site_manager)
    services.request_withdraw(actor=requester, request_id=routine.pk)

    response = client.post(link, {"outcome": "approve"})

    assert response.status_code == 409
    assert "Withdrawn" in response.text


def test_the_step_email_is_given_a_safe_link_for_its_reader(routine, site_manager, settings):
    from approvals import notifications

    step = routine.steps.get(state="active")

    url = notifications._decide_link(step, site_manager)

    assert url.startswith(settings.TOLLGATE_BASE_URL.rstrip("/") + "/approvals/link/")
    link = email_links.read(url.rsplit("/link/", 1)[1].strip("/"))
    assert (link.step_id, link.user_id) == (step.pk, site_manager.pk)


def test_the_step_email_carries_the_safe_link(routine, site_manager, mailoutbox):
    from approvals import notifications

    step = routine.steps.get(state="active")
    mailoutbox.clear()

    notifications.send_step_mail([step.pk], "activated")

    mail = next(m for m in mailoutbox if site_manager.email in m.to)
    decide = next(line for line in mail.body.splitlines() if line.startswith("Decide: "))
    link = email_links.read(decide.rsplit("/link/", 1)[1].strip().strip("/"))
    assert (link.step_id, link.user_id) == (step.pk, site_manager.pk)


def test_guessing_the_password_on_a_link_locks_out_like_the_sign_in_form(
    client, routine, site_manager, settings
):
    settings.APPROVAL_LINK_REAUTH_AMOUNT = 500
    client.force_login(site_manager)
    link = _link(routine, site_manager)

    guesses = [
        client.post(link, {"outcome": "approve", "password": f"guess-{attempt}"}).status_code
        for attempt in range(settings.AXES_FAILURE_LIMIT)
    ]
    right = client.post(link, {"outcome": "approve", "password": "correct-horse-battery"})

    assert guesses == [400] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert right.status_code == 429
    assert not Decision.objects.filter(request=routine).exists()
    signed_in = Client().post(
        reverse("login"), {"username": site_manager.username, "password": "correct-horse-battery"}
    )
    assert signed_in.status_code == 429  # the sign-in form counts the same failures


def test_a_title_typed_with_a_line_break_still_makes_a_step_email(
    matrix, requester, site_a1, site_manager, mailoutbox
):
    from approvals import notifications

    request = raise_request(requester, site_a1, amount="1000", title="PO 4711\nBcc: x@evil.test")
    step = request.steps.get(state="active")
    mailoutbox.clear()

    assert notifications.send_step_mail([step.pk], "activated") >= 1

    mail = next(m for m in mailoutbox if site_manager.email in m.to)
    assert "\n" not in mail.subject and "PO 4711 Bcc: x@evil.test" in mail.subject
    assert mail.bcc == []


def test_the_step_email_reads_money_and_the_due_time_as_people_do(
    routine, site_manager, site_a1, mailoutbox
):
    from approvals import notifications
    from portal.core import formatting

    step = routine.steps.get(state="active")
    mailoutbox.clear()

    notifications.send_step_mail([step.pk], "activated")

    body = next(m for m in mailoutbox if site_manager.email in m.to).body
    assert "Amount: €1,000.00" in body
    assert f"Due:    {formatting.moment(step.due_at, site_a1)}" in body
    assert site_a1.time_zone not in body


def test_the_decided_email_names_the_approver_and_the_time_in_the_sites_zone(
    routine, site_manager, site_a1, mailoutbox
):
    from approvals import notifications, services
    from portal.core import formatting

    services.request_approve(actor=site_manager, request_id=routine.pk, comment="Fine")
    decision = Decision.objects.get(request=routine)
    mailoutbox.clear()

    notifications.send_requester_mail([routine.pk])

    body = mailoutbox[-1].body
    assert f"by {site_manager.get_full_name()}, {formatting.moment(decision.at, site_a1)}" in body
    assert "UTC" not in body
