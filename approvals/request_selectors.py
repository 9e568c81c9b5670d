"""Reads that give an approver context on a request's page: what came before, how the site
trends, which tiers it passes and who is next, what the ledger says happened.

Every function takes a request the caller has already obtained through approvals.selectors (so
it is in scope) or a user whose scope the query applies itself; none of them widens what a
person can see.
"""

from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
)
from django.utils import timezone

from approvals import authority
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    Outcome,
    RequestState,
)
from portal.audit.models import LEDGER_ORDER, AuditEvent
from portal.audit.selectors import REQUEST_TYPE, trail_for
from portal.audit.sentences import event_sentence
from portal.core import erp

HISTORY_LIMIT = 10
TREND_DAYS = 90
DECIDED = (
    RequestState.APPROVED,
    RequestState.REJECTED,
    RequestState.APPLIED,
    RequestState.APPLY_FAILED,
    RequestState.EXPIRED,
)


def earlier_decisions(request: ApprovalRequest, *, limit: int = HISTORY_LIMIT) -> list:
    """Decided requests at the same site for the same counterparty or product, newest first."""
    same = Q()
    if request.counterparty_ref:
        same |= Q(counterparty_ref=request.counterparty_ref)
    elif request.counterparty:
        same |= Q(counterparty=request.counterparty)
    product = (request.details or {}).get("product")
    if product:
        same |= Q(details__product=product)
    if not same:
        return []
    query = (
        ApprovalRequest.objects.filter(same, site=request.site_id, state__in=DECIDED)
        .exclude(pk=request.pk)
        .order_by("-decided_at", "-pk")
    )
    return list(query[:limit])


@dataclass(frozen=True)
class Trend:
    days: int
    decided: int
    approved: int
    rejected: int
    total_approved: Decimal
    median_hours: float | None

    @property
    def approval_rate(self) -> int | None:
        return round(100 * self.approved / self.decided) if self.decided else None


def site_trend(request: ApprovalRequest, *, days: int = TREND_DAYS, at=None) -> Trend:
    """How requests of this kind at this site were decided over the last `days` days.

    The median time to decision is the middle one of all those spans (the later of the two
    middle ones for an even count), worked out by the database: on PostgreSQL in the same
    query as the counts, elsewhere by a second query that reads that one row.
    """
    since = (at or timezone.now()) - timedelta(days=days)
    recent = ApprovalRequest.objects.filter(
        site=request.site_id, kind=request.kind, decided_at__gte=since, state__in=DECIDED
    ).exclude(pk=request.pk)
    approved = Q(state__in=(RequestState.APPROVED, RequestState.APPLIED, RequestState.APPLY_FAILED))
    timed = Q(submitted_at__isnull=False)
    span = ExpressionWrapper(F("decided_at") - F("submitted_at"), output_field=DurationField())
    in_sql = connection.vendor == "postgresql"
    totals = recent.aggregate(
        decided=Count("pk"),
        approved=Count("pk", filter=approved),
        rejected=Count("pk", filter=Q(state=RequestState.REJECTED)),
        total=Sum("amount", filter=approved),
        timed=Count("pk", filter=timed),
        **({"median": UpperMedian(span, filter=timed)} if in_sql else {}),
    )
    median = totals.get("median")
    if not in_sql:
        # Asked even when nothing was timed, so that the page costs the same queries either way.
        middle = totals["timed"] // 2
        spans = recent.filter(timed).annotate(span=span).order_by("span", "pk")
        median = next(iter(spans.values_list("span", flat=True)[middle : middle + 1]), None)
    hours = median.total_seconds() / 3600 if median is not None else None
    return Trend(
        days,
        totals["decided"],
        totals["approved"],
        totals["rejected"],
        totals["total"] or Decimal(0),
        round(hours, 1) if hours is not None else None,
    )


class UpperMedian(Aggregate):
    """The element at index n // 2 of the sorted values: percentile_disc counts from the other
    end so that an even count gives the later of the two middle values."""

    function = "PERCENTILE_DISC"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s DESC)"
    output_field = DurationField()


@dataclass
class PathTier:
    step: ApprovalStep
    decisions: list = field(default_factory=list)
    # For an active tier, who may decide it, by name ("" when nobody may); None otherwise.
    pending: str | None = None


def policy_path(request: ApprovalRequest, *, steps=None, decisions=None) -> list[PathTier]:
    """The tiers of the current round in order, each with its votes (two queries, or none when
    the caller passes the request's steps and its decisions, with their people, already read)."""
    current = max(request.round, 1)
    if steps is None:
        steps = request.steps.filter(round=current).order_by("position")
    steps = sorted((s for s in steps if s.round == current), key=lambda s: s.position)
    by_step = {step.pk: PathTier(step) for step in steps}
    if decisions is None:
        decisions = Decision.objects.filter(step__in=list(by_step)).select_related(
            "actor", "on_behalf_of"
        )
    for vote in decisions:
        if vote.step_id in by_step:
            by_step[vote.step_id].decisions.append(vote)
    return list(by_step.values())


def pending_people(step: ApprovalStep) -> list:
    """Who may decide an active tier now (people holding its role, and their delegates), with
    segregation of duties applied."""
    return authority.audience(step)


def timeline(user, request: ApprovalRequest, *, audits=None) -> list["TimelineEntry"]:
    """The ledger's events about `request`, oldest first, each told as a sentence.

    An auditor gets the full trail (with the delegations used); anyone else who may open the
    request sees the events recorded about the request itself. `audits` False says the viewer
    audits no site at all (so no trail is theirs), which spares asking the ledger's scope.
    """
    events = None
    if audits is not False:
        with suppress(AuditEvent.DoesNotExist):
            events = trail_for(user, REQUEST_TYPE, str(request.pk))
    if events is None:
        events = list(
            AuditEvent.objects.filter(object_type=REQUEST_TYPE, object_id=str(request.pk))
            .select_related("actor", "on_behalf_of")
            .order_by(*LEDGER_ORDER)
        )
    return [TimelineEntry(event.at, event_sentence(event), event.comment) for event in events]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    sentence: str
    comment: str


def odoo_link(request: ApprovalRequest) -> str:
    """The record in Odoo's web client, or "" when the request did not come from Odoo."""
    return erp.record_url(request.odoo_model, request.odoo_id)


def approved_outcome(decision: Decision) -> bool:
    return decision.outcome in (Outcome.APPROVE, Outcome.AUTO_APPROVE)


def as_local(moment: datetime | None, site) -> datetime | None:
    """A moment in the site's own time zone, for display."""
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(site.time_zone)) if moment else None
