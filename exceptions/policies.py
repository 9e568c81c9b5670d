"""Who may see and work which exception case: the one place that answers it.

Cases are seen by anyone with a role at their site (the view capability); they are worked by
holders of the queue's roles at the site, through a membership in force. Out of scope means
404, never 403.

`visible_cases` and `worked_cases` are SQL (`EXISTS` over the grant rows), so they cost nothing
until the query they filter runs. A page that asks them several times reads the person's grants
once instead (`reach_of`, one query) and passes that reach, which turns both filters into plain
lists of site ids; tests/exceptions/test_reach.py holds the two forms equal.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from exceptions.models import OPEN_CASE_STATES, CaseState, ExceptionCase
from exceptions.rules import QUEUE_ROLES
from portal.core.periods import membership_in_force
from sites import policies as site_policies
from sites.policies import Capability


@dataclass(frozen=True)
class CaseReach:
    """Where one person sees cases, and at which open sites they work each queue, as their
    grants in force stood at one moment."""

    seen: frozenset[int]
    worked: dict[str, frozenset[int]]


def reach_of(user, *, at: datetime | None = None, grants=None) -> CaseReach:
    """The person's reach over cases, from their grants in force at `at` (one query), or from
    `grants` already read for them at that moment (no query)."""
    if not (user and user.is_authenticated and user.is_active):
        return CaseReach(frozenset(), {queue: frozenset() for queue in QUEUE_ROLES})
    if grants is None:
        grants = site_policies.grants_in_force([user.pk], at=at)
    # Seeing needs any role that grants the view capability, at an open or a closed site;
    # working a queue needs one of its roles at an open site (as `site_policies.holding`).
    viewing = site_policies.GRANTED_BY[Capability.VIEW]
    return CaseReach(
        seen=frozenset(g.site_id for g in grants if g.role in viewing),
        worked={
            queue: frozenset(g.site_id for g in grants if g.site_active and g.role in roles)
            for queue, roles in QUEUE_ROLES.items()
        },
    )


def visible_cases(user, *, reach: CaseReach | None = None) -> Q:
    """A filter on ExceptionCase: the cases `user` may open (`reach`, when given, is theirs)."""
    if reach is not None:
        return Q(site__in=sorted(reach.seen))
    return site_policies.in_scope(user, Capability.VIEW, site_field="site")


def worked_cases(user, *, at=None, reach: CaseReach | None = None, seen_only=False) -> Q:
    """A filter on ExceptionCase: the cases in a queue `user` works at the case's site
    (`reach`, when given, is theirs at `at`); with `seen_only` (and `reach`), only those they
    also see, which is `visible_cases` and this filter in one."""
    condition = Q(pk__in=[])
    if reach is None:
        for queue, roles in QUEUE_ROLES.items():
            condition |= Q(queue=queue) & site_policies.holding(
                user, sorted(roles), site_field="site", at=at
            )
        return condition
    # Queues worked at the same sites share one condition (`queue IN … AND site IN …`), which
    # the database answers from its index of open cases by site and queue.
    queues_at: dict[frozenset[int], list[str]] = {}
    for queue, worked in reach.worked.items():
        sites = worked & reach.seen if seen_only else worked
        if sites:
            queues_at.setdefault(sites, []).append(queue)
    for sites, queues in queues_at.items():
        condition |= Q(queue__in=queues, site__in=sorted(sites))
    return condition


def worked_queues(user) -> list[str]:
    """The queues `user` works at one site or more (one query)."""
    from sites.models import Membership

    now = timezone.now()
    held = set(
        Membership.objects.filter(membership_in_force(now), user=user.pk).values_list(
            "role", flat=True
        )
    )
    return [queue for queue, roles in QUEUE_ROLES.items() if roles & held]


def may_work(user, case: ExceptionCase) -> bool:
    """Whether `user` works the case's queue at its site (one query)."""
    if not site_policies.may(user, Capability.WORK_EXCEPTIONS, case.site):
        return False
    return any(site_policies.holds_role(user, role, case.site) for role in QUEUE_ROLES[case.queue])


def may_reopen(user, case: ExceptionCase, *, window_days: int) -> bool:
    """Workers of the queue may reopen a closed case within the window."""
    if case.closed_at is None or not may_work(user, case):
        return False
    return timezone.now() - case.closed_at <= timedelta(days=window_days)


def available_actions(user, case: ExceptionCase) -> dict[str, str | None]:
    """Each action on the case, mapped to None when offered or to why it is not: the case page
    and the API detail both show exactly this."""
    works = may_work(user, case)
    not_worker = f"Only people who work the {case.get_queue_display()} queue at {case.site.code}."
    is_open = case.state in OPEN_CASE_STATES
    closed = f"The case is {case.get_state_display().lower()}."
    waiting = (
        f"It waits for the decision on {case.linked_request.reference}."
        if case.linked_request_id and case.linked_request.state in ("submitted", "in_review")
        else None
    )
    window = settings.CASE_REOPEN_WINDOW_DAYS

    def open_work(extra: str | None = None):
        if not is_open:
            return closed
        if not works:
            return not_worker
        return extra

    start_reason = None
    if case.state != CaseState.ASSIGNED:
        start_reason = "Work starts once the case is assigned."
    elif case.owner_id != user.pk:
        start_reason = "Only the case's owner starts work on it."
    return {
        "assign": open_work(),
        "start": open_work(start_reason),
        "resolve": open_work(waiting),
        "dismiss": open_work(),
        "reopen": None
        if may_reopen(user, case, window_days=window)
        else (
            "Only a closed case can be reopened, by the people who work its queue, "
            f"within {window} days."
        ),
    }


def may_configure(actor) -> bool:
    """Queue rules and deadlines shape every site's work: superusers (or Tollgate) change them."""
    return actor is None or bool(actor.is_authenticated and actor.is_active and actor.is_superuser)
