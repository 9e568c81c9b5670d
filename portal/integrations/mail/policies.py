"""Who may see and work which mail in triage: the one place that answers it.

A mail waiting in triage belongs to its site and its mailbox's purpose; it is worked by the
people who work that purpose's exception queues at the site (carrier mail: the warehouse and
customer service queues' roles; supplier mail: procurement's; accounts payable: finance's),
through a membership in force. Everyone else gets 404. A mail whose site Tollgate could not
tell is seen by no one here until an administrator places it at a site.
"""

from django.db.models import Q

from exceptions.models import Queue
from exceptions.rules import QUEUE_ROLES
from portal.integrations.mail.models import Purpose
from sites import policies as site_policies

QUEUES_BY_PURPOSE = {
    Purpose.CARRIER: (Queue.WAREHOUSE, Queue.CUSTOMER_SERVICE),
    Purpose.SUPPLIER: (Queue.PROCUREMENT,),
    Purpose.ACCOUNTS_PAYABLE: (Queue.FINANCE,),
}


def triage_roles(purpose: str) -> frozenset[str]:
    """The roles that work the mail of `purpose`: those of its queues."""
    return frozenset().union(*(QUEUE_ROLES[queue] for queue in QUEUES_BY_PURPOSE[purpose]))


TRIAGE_ROLES = frozenset().union(*(triage_roles(purpose) for purpose in Purpose))


def visible_items(user) -> Q:
    """A filter on TriageItem: the items `user` may open and work (one EXISTS per purpose)."""
    condition = Q(pk__in=[])
    for purpose in Purpose:
        condition |= Q(purpose=purpose) & site_policies.holding(
            user, sorted(triage_roles(purpose)), site_field="site"
        )
    return condition


def may_place(actor) -> bool:
    """Placing a mail at a site decides who reads it: superusers (or Tollgate) do that."""
    return actor is None or bool(actor.is_authenticated and actor.is_active and actor.is_superuser)
