"""Policy insight: how people decided under each rule, and which rules could take a fast path.

For the administrator of some sites, over a chosen period: per rule, how many requests people
decided (fast-path approvals left out), what share they approved unchanged (approved in their
first round, never sent back by a change in Odoo), the median time from submission to decision
and what the decisions cost in approver hours. A rule whose people approve at least
CANDIDATE_SHARE of at least CANDIDATE_MIN requests is a fast-path candidate: the page proposes
a threshold and says what the sampling review of the fast path would have caught had the
threshold been in force. It changes nothing: publishing stays the administrator's act through
the policy's lint and preview.

Three grouped queries whatever the number of rules (a fourth per candidate rule, bounded by
the period, to replay the sampling), over the requests at the sites the viewer administers.
"""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q
from django.utils import timezone

from approvals.models import ApprovalRequest, Decision, Outcome, PolicyRule, RequestState
from approvals.request_selectors import UpperMedian
from approvals.services import review
from sites import policies as site_policies

PERIODS = (30, 90, 180, 365)
DEFAULT_DAYS = 90
CANDIDATE_SHARE = Decimal("0.98")
CANDIDATE_MIN = 50
# The assumption behind "approver hours": reading a request and deciding one tier takes an
# approver ten minutes on average (opening it, checking its lines and history, the comment).
MINUTES_PER_DECISION = 10
_APPROVED = (RequestState.APPROVED, RequestState.APPLIED, RequestState.APPLY_FAILED)
_DECIDED = (*_APPROVED, RequestState.REJECTED, RequestState.EXPIRED)


@dataclass(frozen=True)
class Sampling:
    """What the fast path's sampling review would have seen of the requests it took over."""

    would_fast_path: int
    rate: Decimal
    sampled: int
    not_approved: int
    caught: int


@dataclass(frozen=True)
class RuleInsight:
    rule: PolicyRule
    decided: int
    approved_unchanged: int
    median_hours: float | None
    decisions: int
    highest_approved: Decimal | None
    sampling: Sampling | None = None

    @property
    def share(self) -> Decimal | None:
        return Decimal(self.approved_unchanged) / self.decided if self.decided else None

    @property
    def share_percent(self) -> str:
        share = self.share
        return "" if share is None else f"{(100 * share).quantize(Decimal('0.1'))}"

    @property
    def approver_hours(self) -> Decimal:
        return (Decimal(self.decisions * MINUTES_PER_DECISION) / 60).quantize(Decimal("0.1"))

    @property
    def candidate(self) -> bool:
        share = self.share
        return self.decided >= CANDIDATE_MIN and share is not None and share >= CANDIDATE_SHARE

    @property
    def proposed_threshold(self) -> Decimal | None:
        """Fast path up to the rule's upper limit; a rule without one up to the highest amount
        people approved under it, rounded down to a hundred."""
        if not self.candidate:
            return None
        if self.rule.max_amount is not None:
            return self.rule.max_amount
        if self.highest_approved is None:
            return None
        return self.highest_approved.quantize(Decimal("1E2"), rounding=ROUND_DOWN)


@dataclass(frozen=True)
class Insight:
    days: int
    since: datetime
    rules: list[RuleInsight]

    @property
    def candidates(self) -> list[RuleInsight]:
        return [rule for rule in self.rules if rule.candidate]


def _decided_by_people(user, since: datetime):
    sites = site_policies.sites_administered_by(user).values("pk")
    return ApprovalRequest.objects.filter(
        site__in=sites,
        decided_at__gte=since,
        state__in=_DECIDED,
        fast_path=False,
        rule__isnull=False,
    )


def for_administrator(user, *, days: int = DEFAULT_DAYS, at=None) -> Insight:
    """Every rule that people decided requests under at the viewer's sites in the last `days`."""
    since = (at or timezone.now()) - timedelta(days=days)
    requests = _decided_by_people(user, since)
    unchanged = Q(state__in=_APPROVED, round=1)
    span = ExpressionWrapper(F("decided_at") - F("submitted_at"), output_field=DurationField())
    in_sql = connection.vendor == "postgresql"
    rows = requests.values("rule").annotate(
        decided=Count("pk"),
        unchanged=Count("pk", filter=unchanged),
        highest=Max("amount_base", filter=Q(state__in=_APPROVED)),
        **({"median": UpperMedian(span, filter=Q(submitted_at__isnull=False))} if in_sql else {}),
    )
    figures = {row["rule"]: row for row in rows}
    medians = {pk: row.get("median") for pk, row in figures.items()}
    if not in_sql:
        medians = _medians_in_python(requests, span)
    votes = dict(
        Decision.objects.filter(request__in=requests.values("pk"), actor__isnull=False)
        .exclude(outcome=Outcome.AUTO_APPROVE)
        .values("request__rule")
        .annotate(n=Count("pk"))
        .values_list("request__rule", "n")
    )
    rules = PolicyRule.objects.filter(pk__in=list(figures)).select_related("version__policy")
    found = []
    for rule in sorted(rules, key=lambda r: (-figures[r.pk]["decided"], r.name)):
        row = figures[rule.pk]
        span_of = medians.get(rule.pk)
        insight = RuleInsight(
            rule=rule,
            decided=row["decided"],
            approved_unchanged=row["unchanged"],
            median_hours=round(span_of.total_seconds() / 3600, 1) if span_of else None,
            decisions=votes.get(rule.pk, 0),
            highest_approved=row["highest"],
        )
        if insight.candidate:
            insight = _with_sampling(insight, requests.filter(rule=rule.pk))
        found.append(insight)
    return Insight(days, since, found)


def _medians_in_python(requests, span) -> dict:
    spans = defaultdict(list)
    timed = requests.filter(submitted_at__isnull=False).annotate(span=span)
    for rule, value in timed.values_list("rule", "span"):
        spans[rule].append(value)
    return {rule: sorted(values)[len(values) // 2] for rule, values in spans.items()}


def _with_sampling(insight: RuleInsight, requests) -> RuleInsight:
    """Replay the fast path at the proposed threshold over the requests people decided: the
    unflagged ones below it would have gone through, and the version's deterministic sample
    would have put some of them before finance."""
    version = insight.rule.version
    below = requests.filter(amount_base__lt=insight.proposed_threshold)
    rows = below.values_list("pk", "state", "round", "risk_flags")
    taken = [(pk, state, rnd) for pk, state, rnd, flags in rows if not flags]
    # The submission service's own draw, so the replay picks what the fast path would have.
    sampled = {pk for pk, _, _ in taken if review.sampled(ApprovalRequest(pk=pk), version)}
    not_approved = {pk for pk, state, rnd in taken if state not in _APPROVED or rnd != 1}
    return replace(
        insight,
        sampling=Sampling(
            would_fast_path=len(taken),
            rate=version.fast_path_sample_rate,
            sampled=len(sampled),
            not_approved=len(not_approved),
            caught=len(sampled & not_approved),
        ),
    )
