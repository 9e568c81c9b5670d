"""`/metrics` in Prometheus text format, read from the database at scrape time.

Every value is an aggregate query run when Prometheus scrapes, not a counter kept in the web
process, so any number of web processes and replicas answer the same numbers and a restart
loses nothing.

Access: a scraper sends `Authorization: Bearer <METRICS_TOKEN>`; a signed-in superuser may
also open it in the browser. The numbers are company-wide, so a staff user who administers only
some sites may not read them. A wrong token answers 401; anyone else gets 404, so the endpoint
does not advertise itself. With METRICS_TOKEN unset only superusers can read it.
"""

import hmac

from django.conf import settings
from django.db.models import Count, Max, Min
from django.http import Http404, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from approvals.models import ApprovalRequest, ApprovalStep, RequestState, StepState
from exceptions.models import OPEN_CASE_STATES, ExceptionCase
from portal.audit import sequencer
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.integrations.odoo.models import OutboxItem
from portal.notify.models import MailState, OutboxMail
from portal.webhooks.models import InboundDelivery
from sites.policies import is_company_admin


class TollgateCollector:
    """Yields Tollgate's gauges from a handful of GROUP BY queries."""

    def collect(self):
        yield from self._requests()
        yield self._overdue_steps()
        yield self._open_cases()
        yield self._outbox()
        yield from self._notifications()
        yield self._deliveries()
        yield from self._ledger()

    def _requests(self):
        family = GaugeMetricFamily(
            "tollgate_approval_requests",
            "Approval requests by state and kind.",
            labels=["state", "kind"],
        )
        rows = list(
            ApprovalRequest.objects.values("state", "kind")
            .annotate(n=Count("pk"))
            .order_by("state", "kind")
        )
        for row in rows:
            family.add_metric([row["state"], row["kind"]], row["n"])
        yield family
        in_review = GaugeMetricFamily(
            "tollgate_approval_requests_in_review", "Approval requests waiting for a decision."
        )
        in_review.add_metric([], sum(r["n"] for r in rows if r["state"] == RequestState.IN_REVIEW))
        yield in_review

    def _overdue_steps(self):
        family = GaugeMetricFamily(
            "tollgate_approval_steps_overdue", "Active approval tiers past their due time."
        )
        overdue = ApprovalStep.objects.filter(
            state=StepState.ACTIVE, due_at__lt=timezone.now()
        ).count()
        family.add_metric([], overdue)
        return family

    def _open_cases(self):
        family = GaugeMetricFamily(
            "tollgate_exception_cases_open",
            "Open exception cases by queue and severity.",
            labels=["queue", "severity"],
        )
        rows = (
            ExceptionCase.objects.filter(state__in=OPEN_CASE_STATES)
            .values("queue", "severity")
            .annotate(n=Count("pk"))
            .order_by("queue", "severity")
        )
        for row in rows:
            family.add_metric([row["queue"], row["severity"]], row["n"])
        return family

    def _outbox(self):
        family = GaugeMetricFamily(
            "tollgate_odoo_outbox_items",
            "Odoo write-backs by state; state=failed needs an administrator.",
            labels=["state"],
        )
        rows = OutboxItem.objects.values("state").annotate(n=Count("pk")).order_by("state")
        for row in rows:
            family.add_metric([row["state"]], row["n"])
        return family

    def _notifications(self):
        # Sent rows are kept for a retention period and never counted here: what an operator
        # watches is mail still waiting and mail that has given up.
        waiting = GaugeMetricFamily(
            "tollgate_notifications",
            "Notifications not yet sent, by state; state=failed needs an administrator.",
            labels=["state"],
        )
        unsent = OutboxMail.objects.exclude(state=MailState.SENT)
        counts = dict(unsent.values_list("state").annotate(n=Count("pk")).order_by("state"))
        for state in (MailState.PENDING, MailState.FAILED):
            waiting.add_metric([state.value], counts.get(state, 0))
        yield waiting
        oldest = unsent.filter(state=MailState.PENDING).aggregate(at=Min("created_at"))["at"]
        age = GaugeMetricFamily(
            "tollgate_notifications_oldest_pending_seconds",
            "How long the oldest notification still waiting has waited (0 when none waits).",
        )
        age.add_metric([], round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0)
        yield age

    def _deliveries(self):
        family = GaugeMetricFamily(
            "tollgate_webhook_deliveries",
            "Inbound webhook deliveries by source and status.",
            labels=["source", "status"],
        )
        rows = (
            InboundDelivery.objects.values("source__name", "status")
            .annotate(n=Count("pk"))
            .order_by("source__name", "status")
        )
        for row in rows:
            family.add_metric([row["source__name"], row["status"]], row["n"])
        return family

    def _ledger(self):
        # Sequences are gap-free (verify_audit checks it), so the highest is the count.
        head = AuditEvent.objects.aggregate(head=Max("sequence"))["head"] or 0
        events = CounterMetricFamily("tollgate_audit_events", "Sealed events in the audit ledger.")
        events.add_metric([], head)
        yield events
        waiting = sequencer.backlog()
        unsealed = GaugeMetricFamily(
            "tollgate_audit_unsealed_events", "Events recorded and not yet sealed into the chain."
        )
        unsealed.add_metric([], waiting.count)
        yield unsealed
        oldest = GaugeMetricFamily(
            "tollgate_audit_oldest_unsealed_seconds",
            "How long the oldest unsealed event has waited for its seal (0 when none waits).",
        )
        oldest.add_metric([], round(waiting.oldest_seconds, 3))
        yield oldest
        allowed = GaugeMetricFamily(
            "tollgate_audit_max_seal_seconds", "The longest an event may wait for its seal."
        )
        allowed.add_metric([], waiting.max_seconds)
        yield allowed
        checkpoint = AuditCheckpoint.objects.order_by("-sequence", "-at").first()
        at = GaugeMetricFamily(
            "tollgate_audit_last_checkpoint_timestamp_seconds",
            "When the ledger's head was last checkpointed (Unix time; 0 when never).",
        )
        at.add_metric([], checkpoint.at.timestamp() if checkpoint else 0)
        yield at
        sequence = GaugeMetricFamily(
            "tollgate_audit_last_checkpoint_sequence", "The event the last checkpoint recorded."
        )
        sequence.add_metric([], checkpoint.sequence if checkpoint else 0)
        yield sequence


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The metrics collected now, in the format the scraper's Accept header asks for."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TollgateCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def _bearer(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def metrics_view(request):
    """Prometheus scrape endpoint: the metrics token or a superuser's session, else 401/404."""
    token = _bearer(request)
    expected = settings.METRICS_TOKEN
    if token is not None:
        if not (expected and hmac.compare_digest(token.encode(), expected.encode())):
            response = HttpResponse(
                "Invalid metrics token.\n", status=401, content_type="text/plain"
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not is_company_admin(request.user):
        raise Http404("No such page.")
    body, content_type = exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
