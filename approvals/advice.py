"""Decision support for an approver: how similar requests went, and what that suggests.

Advice is read from Tollgate's own history and never decides anything: it is shown beside the
decision form, and the label that was on screen travels with the decision into the ledger, so
an auditor can tell whether a person followed it. It is bounded by what the viewer may see: the
similar requests are counted among the requests the viewer's authority lets them open, so a
site manager's advice is drawn from their own site's history, a regional manager's from the
region's.

"Similar" narrows step by step and keeps the narrowest comparison that has enough history: the
same kind at the same site, with the same vendor or customer (or category) in the same amount
band; then the same kind and band at the site; then across the region. Every level is counted
in one grouped query, so the page pays the same queries whatever the history holds.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q
from django.utils import timezone

from approvals import selectors
from approvals.models import ApprovalRequest, Decision, Outcome, RequestState
from approvals.request_selectors import UpperMedian
from portal.core import formatting

ROUTINE, LOOK_CLOSER, UNUSUAL = "routine", "look_closer", "unusual"
LABELS = {ROUTINE: "Routine", LOOK_CLOSER: "Look closer", UNUSUAL: "Unusual"}
# Flags that say the request itself is out of the ordinary; the others ask for a second look.
SERIOUS_FLAGS = {"amount_outlier", "threshold_split", "price_below_history"}
# As the request page's trend for the site: the last ninety days.
HISTORY_DAYS = 90
# Below this many decided requests a comparison says little, and the next wider one is tried.
ENOUGH = 5
ROUTINE_RATE = Decimal("0.9")
DOUBTFUL_RATE = Decimal("0.7")
BAND = (Decimal("0.5"), Decimal("2"))
_APPROVED = (RequestState.APPROVED, RequestState.APPLIED, RequestState.APPLY_FAILED)
_DECIDED = (*_APPROVED, RequestState.REJECTED, RequestState.EXPIRED)


def enabled() -> bool:
    """Whether decision support is shown at all (DECISION_ADVICE)."""
    return settings.DECISION_ADVICE


@dataclass(frozen=True)
class Earlier:
    """One of the last decisions on a similar request, as the page tells it."""

    request_id: int
    reference: str
    title: str
    outcome: str
    by: str
    comment: str
    at: object


@dataclass(frozen=True)
class Similar:
    described: str
    count: int
    approved: int
    median_hours: float | None
    max_approved: Decimal | None
    last: list[Earlier]

    @property
    def approval_rate(self) -> int | None:
        return round(100 * self.approved / self.count) if self.count else None


@dataclass(frozen=True)
class Recommendation:
    label: str
    confidence: int
    reasons: list[str]

    @property
    def title(self) -> str:
        return LABELS[self.label]


@dataclass(frozen=True)
class Advice:
    similar: Similar
    recommendation: Recommendation


def for_request(approval: ApprovalRequest, viewer, *, at=None) -> Advice | None:
    """The advice for `approval` as `viewer` (a user or their authority) may see it: three
    queries (two on PostgreSQL); None when advice is switched off."""
    if not enabled():
        return None
    similar = similar_requests(approval, viewer, at=at)
    return Advice(similar, recommend(approval, similar))


def _levels(approval: ApprovalRequest) -> list[tuple[Q, str]]:
    """The comparisons, narrowest first, each with how it reads."""
    kind = approval.get_kind_display().lower()
    site = approval.site
    amount = approval.amount_base if approval.amount_base is not None else approval.amount
    low, high = (amount * factor for factor in BAND)
    band = Q(amount_base__gte=low, amount_base__lte=high)
    base = settings.TOLLGATE_BASE_CURRENCY
    band_words = f"between {formatting.money(low, base)} and {formatting.money(high, base)}"
    levels = []
    if approval.counterparty_ref:
        same, whom = Q(counterparty_ref=approval.counterparty_ref), approval.counterparty
    elif approval.counterparty:
        same, whom = Q(counterparty=approval.counterparty), approval.counterparty
    elif approval.category:
        same, whom = Q(category=approval.category), f"category {approval.category}"
    else:
        same, whom = None, ""
    at_site = Q(site=approval.site_id)
    if same is not None:
        levels.append(
            (at_site & same & band, f"{kind} requests at {site.code} with {whom}, {band_words}")
        )
    levels.append((at_site & band, f"{kind} requests at {site.code}, {band_words}"))
    levels.append(
        (Q(site__region=site.region_id) & band, f"{kind} requests in {site.region}, {band_words}")
    )
    return levels


def _decided_like(approval: ApprovalRequest, viewer, at):
    since = (at or timezone.now()) - timedelta(days=HISTORY_DAYS)
    return (
        selectors.requests_visible_to(viewer)
        .filter(
            kind=approval.kind,
            site__region=approval.site.region_id,
            state__in=_DECIDED,
            decided_at__gte=since,
            fast_path=False,
        )
        .exclude(pk=approval.pk)
    )


def similar_requests(approval: ApprovalRequest, viewer, *, at=None) -> Similar:
    """The narrowest comparison with enough decided requests, with its numbers and its last
    three decisions by people."""
    decided = _decided_like(approval, viewer, at)
    levels = _levels(approval)
    span = ExpressionWrapper(F("decided_at") - F("submitted_at"), output_field=DurationField())
    approved = Q(state__in=_APPROVED)
    timed = Q(submitted_at__isnull=False)
    in_sql = connection.vendor == "postgresql"
    figures = {}
    for n, (where, _words) in enumerate(levels):
        figures[f"n{n}"] = Count("pk", filter=where)
        figures[f"a{n}"] = Count("pk", filter=where & approved)
        figures[f"x{n}"] = Max("amount_base", filter=where & approved)
        figures[f"t{n}"] = Count("pk", filter=where & timed)
        if in_sql:
            figures[f"m{n}"] = UpperMedian(span, filter=where & timed)
    totals = decided.aggregate(**figures)
    chosen = next((n for n in range(len(levels)) if totals[f"n{n}"] >= ENOUGH), len(levels) - 1)
    where, words = levels[chosen]
    median = totals.get(f"m{chosen}")
    if not in_sql:
        # As approvals.request_selectors.site_trend: the later of the two middle spans, by offset.
        middle = totals[f"t{chosen}"] // 2
        spans = decided.filter(where, timed).annotate(span=span).order_by("span", "pk")
        median = next(iter(spans.values_list("span", flat=True)[middle : middle + 1]), None)
    hours = round(median.total_seconds() / 3600, 1) if median is not None else None
    return Similar(
        described=words,
        count=totals[f"n{chosen}"],
        approved=totals[f"a{chosen}"],
        median_hours=hours,
        max_approved=totals[f"x{chosen}"],
        last=_last_decisions(decided.filter(where)),
    )


def _last_decisions(requests, limit: int = 3) -> list[Earlier]:
    """The last vote by a person on each of the `limit` most recently decided requests (one
    query: those requests are picked inside it, and their votes, a handful, sorted here)."""
    latest = requests.order_by("-decided_at", "-pk").values("pk")[:limit]
    votes = (
        Decision.objects.filter(request__in=latest, actor__isnull=False)
        .exclude(outcome=Outcome.AUTO_APPROVE)
        .select_related("request", "actor", "on_behalf_of")
    )
    last = {}
    for vote in sorted(votes, key=lambda v: (v.at, v.pk)):
        last[vote.request_id] = vote
    ordered = sorted(
        last.values(), key=lambda v: (v.request.decided_at, v.request_id), reverse=True
    )
    return [
        Earlier(
            request_id=vote.request_id,
            reference=vote.request.reference,
            title=vote.request.title,
            outcome=vote.get_outcome_display(),
            by=_name(vote.actor, vote.on_behalf_of),
            comment=vote.comment,
            at=vote.at,
        )
        for vote in ordered
    ]


def _name(actor, on_behalf_of) -> str:
    if actor is None:
        return "Tollgate"
    name = actor.get_full_name() or actor.get_username()
    if on_behalf_of is not None:
        name += f" on behalf of {on_behalf_of.get_full_name() or on_behalf_of.get_username()}"
    return name


def recommend(approval: ApprovalRequest, similar: Similar) -> Recommendation:
    """Routine, look closer or unusual, from the risk flags and the similar requests, with how
    sure it is and why, in words."""
    flags = {flag["code"]: flag for flag in approval.risk_flags or []}
    reasons = []
    serious = sorted(SERIOUS_FLAGS & set(flags))
    for code in serious:
        reasons.append(f"Risk signal: {_flag_label(code)}.")
    mild = sorted(set(flags) - SERIOUS_FLAGS)
    for code in mild:
        reasons.append(f"Risk signal: {_flag_label(code)}.")
    reasons.append(_history_reason(similar))
    rate = Decimal(similar.approved) / similar.count if similar.count else None
    amount = approval.amount_base
    above_all = (
        amount is not None and similar.max_approved is not None and amount > similar.max_approved
    )
    if above_all:
        base = settings.TOLLGATE_BASE_CURRENCY
        reasons.append(
            f"The amount is above every similar approved request (the highest was "
            f"{formatting.money(similar.max_approved, base)})."
        )
    # How much the history can say: a share of 100 that grows with the number compared.
    weight = Decimal(similar.count) / (similar.count + ENOUGH)
    if serious or (above_all and rate is not None and rate < DOUBTFUL_RATE):
        label, sure = UNUSUAL, Decimal("0.6") + Decimal("0.3") * weight
    elif similar.count < ENOUGH:
        label, sure = LOOK_CLOSER, Decimal("0.5")
    elif rate < DOUBTFUL_RATE:
        label, sure = LOOK_CLOSER, Decimal("0.5") + (1 - rate) * Decimal("0.4") * weight
    elif mild or above_all or rate < ROUTINE_RATE:
        label, sure = LOOK_CLOSER, Decimal("0.5") + Decimal("0.3") * weight
    else:
        label, sure = ROUTINE, rate * weight
    confidence = max(10, min(95, round(100 * sure)))
    return Recommendation(label, confidence, reasons)


def _history_reason(similar: Similar) -> str:
    if not similar.count:
        return f"No {similar.described} were decided in the last {HISTORY_DAYS} days."
    were = "was" if similar.count == 1 else "were"
    return (
        f"{similar.count} {similar.described} {were} decided by people in the last "
        f"{HISTORY_DAYS} days; {similar.approval_rate} % of them were approved."
    )


def _flag_label(code: str) -> str:
    from approvals.selectors import flag_label

    return flag_label(code).lower()
