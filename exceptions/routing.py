"""Which queue a new case lands in and when it falls due: data rules with fixed fallbacks.

Both are read when a case is raised (and its due time again when a repeat sighting makes it
more severe); a rule edited later never moves cases already raised.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from approvals import sla
from exceptions.models import SEVERITY_RANK, CaseDeadline, QueueRule
from exceptions.rules import DEFAULT_QUEUE, HOURS_BY_SEVERITY
from sites.roles import Role


@dataclass(frozen=True)
class Deadline:
    hours: Decimal
    business_hours: bool = False
    remind_at_percent: int = 75
    escalation_role: str = Role.REGIONAL_MANAGER


@dataclass(frozen=True)
class Due:
    due_at: datetime
    remind_at: datetime
    escalation_role: str


def queue_for(*, kind: str, severity: str, site) -> str:
    """The queue of the most specific matching rule, else the kind's default queue."""
    rank = SEVERITY_RANK[severity]
    severities = [""] + [s for s, r in SEVERITY_RANK.items() if r <= rank]
    rules = QueueRule.objects.filter(
        Q(site=site.pk) | Q(region=site.region_id) | Q(site__isnull=True, region__isnull=True),
        Q(kind="") | Q(kind=kind),
        min_severity__in=severities,
    )
    # Most specific first; among equals the oldest rule, so the choice never flickers.
    ranked = sorted(rules, key=lambda rule: (tuple(-n for n in rule.specificity), rule.pk))
    return ranked[0].queue if ranked else DEFAULT_QUEUE[kind]


def deadline_for(*, severity: str, queue: str) -> Deadline:
    """The queue's own row for the severity, else the row for every queue, else the default."""
    rows = {
        row.queue: row
        for row in CaseDeadline.objects.filter(Q(queue=queue) | Q(queue=""), severity=severity)
    }
    row = rows.get(queue) or rows.get("")
    if row is None:
        return Deadline(hours=Decimal(HOURS_BY_SEVERITY[severity]))
    return Deadline(
        hours=row.hours,
        business_hours=row.business_hours,
        remind_at_percent=row.remind_at_percent,
        escalation_role=row.escalation_role,
    )


def due(*, severity: str, queue: str, site, since: datetime) -> Due:
    """When a case detected at `since` falls due and is reminded, in the site's time zone."""
    rule = deadline_for(severity=severity, queue=queue)

    def after(hours: Decimal) -> datetime:
        return sla.deadline(since, hours, site=site, business_hours=rule.business_hours)

    return Due(
        due_at=after(rule.hours),
        remind_at=after(rule.hours * rule.remind_at_percent / 100),
        escalation_role=rule.escalation_role,
    )
