"""Which grants are in force at a moment: memberships and delegations, asked the same way by
every app that reads them."""

from datetime import datetime

from django.db.models import Q


def membership_in_force(at: datetime, *, via: str = "") -> Q:
    """Memberships that grant something at `at`: begun, and not yet ended (`valid_to` excluded).

    `via` is the lookup path to the membership from the model queried, e.g. "membership__".
    """
    return Q(**{f"{via}valid_from__lte": at}) & (
        Q(**{f"{via}valid_to__isnull": True}) | Q(**{f"{via}valid_to__gt": at})
    )


def delegation_in_force(at: datetime, *, via: str = "") -> Q:
    """Delegations that move approvals at `at`: begun, not ended (`ends_at` excluded), not
    revoked."""
    return Q(
        **{f"{via}starts_at__lte": at, f"{via}ends_at__gt": at, f"{via}revoked_at__isnull": True}
    )
