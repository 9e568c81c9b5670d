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
