"""/metrics: Prometheus text read from the database, for a token or a superuser only."""

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from portal.audit.checkpoints import checkpoint_take
from portal.audit.models import AuditEvent
from tests.approvals.conftest import _working_morning, matrix, raise_request, staffed
from tests.factories import UserFactory

__all__ = ["_working_morning", "matrix", "staffed"]

pytestmark = pytest.mark.django_db
TOKEN = "metrics-test-token-not-a-secret"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, **headers) -> dict:
    response = client.get(reverse("metrics"), **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_requests_steps_and_ledger(client, token, matrix, requester, site_a1):
    raise_request(requester, site_a1, amount="1000")
    raise_request(requester, site_a1, amount="100")  # fast path
    checkpoint_take()
    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert (
        samples[("tollgate_approval_requests", (("kind", "purchase"), ("state", "in_review")))] == 1
    )
    assert (
        samples[("tollgate_approval_requests", (("kind", "purchase"), ("state", "approved")))] == 1
    )
    assert samples[("tollgate_approval_requests_in_review", ())] == 1
    assert samples[("tollgate_approval_steps_overdue", ())] == 0
    head = AuditEvent.objects.order_by("-sequence").first().sequence
    assert samples[("tollgate_audit_events_total", ())] == head
    assert samples[("tollgate_audit_last_checkpoint_sequence", ())] == head
    assert samples[("tollgate_audit_last_checkpoint_timestamp_seconds", ())] > 0


def test_metrics_count_open_cases_by_queue_and_severity(client, token, site_a1):
    from exceptions.services import case_raise

    case_raise(
        kind="invoice_mismatch",
        site=site_a1,
        severity="high",
        title="Bill over the order",
        source="manual",
        dedupe_key="bill-1",
        payload={},
        evidence={},
    )
    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert (
        samples[("tollgate_exception_cases_open", (("queue", "finance"), ("severity", "high")))]
        == 1
    )


def test_metrics_count_notifications_waiting_and_failed(client, token, db):
    from datetime import timedelta

    from django.utils import timezone

    from portal.notify.models import MailState, OutboxMail, Topic

    long_ago = timezone.now() - timedelta(minutes=10)
    OutboxMail.objects.create(topic=Topic.REQUEST, object_id=1, created_at=long_ago)
    OutboxMail.objects.create(topic=Topic.REQUEST, object_id=2)
    OutboxMail.objects.create(topic=Topic.REQUEST, object_id=3, state=MailState.FAILED)
    OutboxMail.objects.create(topic=Topic.REQUEST, object_id=4, state=MailState.SENT)
    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert samples[("tollgate_notifications", (("state", "pending"),))] == 2
    assert samples[("tollgate_notifications", (("state", "failed"),))] == 1
    assert 600 <= samples[("tollgate_notifications_oldest_pending_seconds", ())] < 700


def test_superuser_may_read_metrics_without_token(client, db):
    operator = UserFactory(username="operator", is_staff=True, is_superuser=True)
    client.force_login(operator)
    samples = scrape(client)
    assert samples[("tollgate_audit_events_total", ())] >= 0


def test_staff_administering_some_sites_get_404_for_the_company_wide_numbers(
    client, token, administrator
):
    administrator.is_staff = True
    administrator.save(update_fields=["is_staff"])
    client.force_login(administrator)
    assert client.get(reverse("metrics")).status_code == 404


def test_wrong_token_is_401(client, token):
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer wrong")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_refused_when_none_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 401


def test_anonymous_and_non_staff_get_404(client, token, site_manager):
    assert client.get(reverse("metrics")).status_code == 404
    client.force_login(site_manager)
    assert client.get(reverse("metrics")).status_code == 404


def test_metrics_cost_the_same_queries_whatever_the_volume(
    client, token, matrix, requester, site_a1, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    raise_request(requester, site_a1, amount="600")
    with CaptureQueriesContext(connection) as few:
        scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    for amount in ("610", "620", "630", "150"):
        raise_request(requester, site_a1, amount=amount)
    with django_assert_max_num_queries(len(few.captured_queries)):
        scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
