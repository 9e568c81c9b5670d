"""Reads that give an approver context: what came before, how the site trends, who is next.

They serve the request page and the inbox. Every function takes a request the caller has
already obtained through approvals.selectors (so it is in scope) or a user whose scope the
query applies itself; none of them widens what a person can see.
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
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
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
    PolicyRule,
    RequestState,
    RiskFlag,
)
from approvals.selectors import LISTED_WITHOUT, InboxFilters, inbox_filtered
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
        **({"median": _UpperMedian(span, filter=timed)} if in_sql else {}),
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


class _UpperMedian(Aggregate):
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


@dataclass(frozen=True)
class InboxEntry:
    """One request in the inbox, and whom the viewer would decide it for."""

    request: ApprovalRequest
    on_behalf_of: object | None
    comment_required: bool
    bulk_blocker: str | None


def inbox_entries(who, requests: list[ApprovalRequest], *, at=None) -> list[InboxEntry]:
    """Annotate a page of the inbox with "on behalf of" and bulk eligibility (four queries)."""
    firsts, delegators = _first_options(who, requests, at)
    if not requests:
        return []
    # The rules by their own keys: a lookup by primary key, not the requests read again.
    by_id = PolicyRule.objects.in_bulk({r.rule_id for r in requests if r.rule_id is not None})
    entries = []
    for request in requests:
        first = firsts.get(request.pk)
        entries.append(
            InboxEntry(
                request,
                delegators.get(first.on_behalf_of_id) if first else None,
                bool(first and first.step.comment_required),
                bulk_blocker(request, by_id.get(request.rule_id) if first else None),
            )
        )
    return entries


@dataclass(frozen=True)
class InboxRow:
    """One request on the inbox page, and whom the viewer would decide it for."""

    request: ApprovalRequest
    on_behalf_of: object | None


def inbox_rows(who, requests: list[ApprovalRequest], *, at=None) -> list[InboxRow]:
    """A page of the inbox with "on behalf of" only, as the inbox page shows it: inbox_entries
    without bulk eligibility, which only the bulk page needs (three queries; none for someone
    who stands in for nobody, since they decide everything in their own name)."""
    if not authority.as_authority(who, at=at).covers:
        return [InboxRow(request, None) for request in requests]
    firsts, delegators = _first_options(who, requests, at)
    rows = []
    for request in requests:
        first = firsts.get(request.pk)
        rows.append(InboxRow(request, delegators.get(first.on_behalf_of_id) if first else None))
    return rows


def _first_options(who, requests, at) -> tuple[dict, dict]:
    """The first tier each request offers the viewer (request id -> option), and the people
    they would decide for (user id -> user)."""
    from django.contrib.auth import get_user_model

    if not requests:
        return {}, {}
    options = authority.as_authority(who, at=at).options_for(requests)
    firsts = {pk: found[0] for pk, found in options.items() if found}
    standing_in = {first.on_behalf_of_id for first in firsts.values() if first.on_behalf_of_id}
    delegators = get_user_model().objects.in_bulk(standing_in) if standing_in else {}
    return firsts, delegators


def bulk_blocker(request: ApprovalRequest, rule) -> str | None:
    """Why `request` must be decided on its own page, or None when it may be bulk-approved.

    Bulk approval is for routine work only: unflagged requests whose rule has a fast path.
    """
    if request.risk_flags:
        names = ", ".join(flag_label(flag["code"]) for flag in request.risk_flags)
        return f"Risk flags ({names}) — decide it on its own page."
    if rule is None or rule.auto_approve_below is None:
        return "Its rule has no fast path, so it is not routine — decide it on its own page."
    return None


def flag_label(code: str) -> str:
    """The risk flag's name as people read it."""
    try:
        return RiskFlag(code).label
    except ValueError:
        return code.replace("_", " ")


# Counts stop here (the page says "100+"): a count never reads a whole region's queue.
COUNT_CAP = 100


def inbox_count(who, filters: InboxFilters | None = None, *, at=None) -> dict[str, int | bool]:
    """How many requests `who` can decide now under `filters`, and how many are overdue, each
    counted up to COUNT_CAP; `more` says the total went past it (see `_soonest_decidable`)."""
    deciding = authority.as_authority(who, at=at)
    found = _soonest_decidable(deciding, filters or InboxFilters(), COUNT_CAP + 1)
    return _counted(found, deciding.at)


@dataclass(frozen=True)
class InboxHead:
    """The first page of someone's inbox and its capped counts (see `inbox_head`)."""

    requests: list[ApprovalRequest]
    next_cursor: tuple[datetime, int] | None
    counts: dict[str, int | bool]


def inbox_head(who, filters: InboxFilters | None = None, *, limit: int, at=None) -> InboxHead:
    """The first `limit` requests `who` can decide now under `filters`, soonest due first (the
    rows and cursor of `approvals.selectors.inbox_for`'s first page, with their sites but not
    their requesters or long texts), with `inbox_count`'s counts: two queries in the common
    case, for the inbox page."""
    deciding = authority.as_authority(who, at=at)
    found = _soonest_decidable(deciding, filters or InboxFilters(), max(COUNT_CAP, limit) + 1)
    counts = _counted(found, deciding.at)
    if not found:
        return InboxHead([], None, counts)
    shown = [pk for pk, _due in found[:limit]]
    page = list(
        ApprovalRequest.objects.filter(pk__in=shown)
        .select_related("site")
        .defer(*LISTED_WITHOUT)
        .order_by("due_at", "pk")
    )
    more = len(found) > limit
    return InboxHead(page, (page[-1].due_at, page[-1].pk) if more else None, counts)


def _soonest_decidable(deciding, filters: InboxFilters, need: int) -> list[tuple[int, datetime]]:
    """(id, due_at) of the first `need` requests the authority `deciding` may decide now under
    `filters`, soonest due first.

    Rather than have the database test every waiting request at the person's sites (hundreds
    of milliseconds for a region at a million requests), this reads the soonest due waiting
    requests in batches as `inbox_for` does, each batch with whether each one is the person's
    to decide: one query a batch, usually one batch.
    """
    from approvals.selectors import INBOX_BATCHES, _after, _candidates, deciding_sites

    at = deciding.at
    sites = deciding_sites(deciding, filters.site_id)
    if not sites:
        return []
    waiting = inbox_filtered(
        ApprovalRequest.objects.filter(state=RequestState.IN_REVIEW), filters, at
    )
    decidable = decidable_by(deciding)
    found: list[tuple[int, datetime]] = []
    cursor, size = None, 2 * need
    for _ in range(INBOX_BATCHES):
        batch = list(
            ApprovalRequest.objects.filter(
                pk__in=_candidates(waiting, sites, cursor, size).values("pk")
            )
            .annotate(theirs=decidable)
            .order_by("due_at", "pk")
            .values_list("pk", "due_at", "theirs")
        )
        found += [(pk, due) for pk, due, theirs in batch if theirs]
        if len(found) >= need or len(batch) < size:
            return found[:need]
        cursor = (batch[-1][1], batch[-1][0])
        size *= 4
    # Someone who can decide few of the requests at their busy sites: finish with one query
    # that tests every remaining request in order, as inbox_for does.
    rest = _after(waiting.filter(decidable, site__in=sites), cursor)
    return found + list(
        rest.order_by("due_at", "pk").values_list("pk", "due_at")[: need - len(found)]
    )


def decidable_by(deciding: authority.Authority) -> Exists:
    """Whether a request (the outer query's row) has an active tier `deciding` may decide now,
    tested request by request.

    The second, redundant condition on the request keeps PostgreSQL from answering the test
    with one hashed pass over every tier the person may decide (it can hash only equalities):
    it picks that once a batch holds about two hundred candidates. For someone deciding at one
    site of a million requests that pass reads every active tier there, 3-14 ms, against about
    1.3 ms for an index lookup per candidate.
    """
    steps = ApprovalStep.objects.filter(
        deciding.steps(), request=OuterRef("pk"), request__gte=OuterRef("pk")
    )
    return Exists(steps)


def _counted(found: list[tuple[int, datetime]], at: datetime) -> dict[str, int | bool]:
    """The capped counts of the soonest due decidable requests: overdue ones come first, so a
    window of COUNT_CAP + 1 or more holds as many of them as there are, up to the cap."""
    return capped(len(found), sum(1 for _pk, due in found if due is not None and due < at))


def capped(total: int, overdue: int) -> dict[str, int | bool]:
    """Counts as the inbox shows them: each up to COUNT_CAP, and whether it went past."""
    return {
        "total": min(total, COUNT_CAP),
        "overdue": min(overdue, COUNT_CAP),
        "more": total > COUNT_CAP,
        "more_overdue": overdue > COUNT_CAP,
    }


def approved_outcome(decision: Decision) -> bool:
    return decision.outcome in (Outcome.APPROVE, Outcome.AUTO_APPROVE)


def as_local(moment: datetime | None, site) -> datetime | None:
    """A moment in the site's own time zone, for display."""
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(site.time_zone)) if moment else None
