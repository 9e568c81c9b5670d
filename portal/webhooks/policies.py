"""Who may manage the webhook sources and their secrets, and outbound subscriptions.

A webhook source and its signing secrets are company-wide (a secret lets whoever holds it
raise cases at any site), so only a superuser (or Tollgate itself) manages them.
A subscription without a region receives the events of every site, so only a superuser (or
Tollgate itself) manages it; one limited to a region is managed by whoever administers every
site of that region, like the region itself.
"""

from django.db.models import Q

from sites.models import Region
from sites.policies import may_administer_region


def may_manage_sources(actor) -> bool:
    """Whether `actor` may register a webhook source and add or retire its secrets."""
    return actor is None or _is_superuser(actor)


def may_manage_subscription(actor, *, region: Region | None) -> bool:
    """Whether `actor` may add, change, disable or redeliver for a subscription at `region`."""
    if actor is None or _is_superuser(actor):
        return True
    return region is not None and may_administer_region(actor, region)


def subscriptions_scope(actor, *, prefix: str = "") -> Q:
    """A filter on subscriptions (or rows reached through `prefix`) that `actor` manages."""
    if actor is None or _is_superuser(actor):
        return Q()
    regions = [region.pk for region in Region.objects.all() if may_administer_region(actor, region)]
    return Q(**{f"{prefix}region__in": regions})


def _is_superuser(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)
