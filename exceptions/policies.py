"""Who may see and work which exception case: the one place that answers it.

Cases are seen by anyone with a role at their site (the view capability); they are worked by
holders of the queue's roles at the site, through a membership in force. Out of scope means
404, never 403.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from exceptions.models import ExceptionCase
from exceptions.rules import QUEUE_ROLES
from sites import policies as site_policies
from sites.policies import Capability


def visible_cases(user) -> Q:
    """A filter on ExceptionCase: the cases `user` may open."""
    return site_policies.in_scope(user, Capability.VIEW, site_field="site")


def worked_cases(user, *, at=None) -> Q:
    """A filter on ExceptionCase: the cases in a queue `user` works at the case's site."""
    condition = Q(pk__in=[])
    for queue, roles in QUEUE_ROLES.items():
        condition |= Q(queue=queue) & site_policies.holding(
            user, sorted(roles), site_field="site", at=at
        )
    return condition


def worked_queues(user) -> list[str]:
    """The queues `user` works at one site or more (one query)."""
    from sites.models import Membership

    now = timezone.now()
    held = set(
        Membership.objects.filter(user=user.pk, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .values_list("role", flat=True)
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


def may_configure(actor) -> bool:
    """Queue rules and deadlines shape every site's work: superusers (or Tollgate) change them."""
    return actor is None or bool(actor.is_authenticated and actor.is_active and actor.is_superuser)
