"""What the top navigation needs to know about the signed-in person."""

from django import template

from sites.roles import Role
from sites.selectors import memberships_in_force

register = template.Library()


def remember_roles(request, memberships) -> None:
    """Keep the roles of `memberships` (all those of the signed-in person in force now, already
    read by the view) for the navigation, so that it does not read them again."""
    request._tollgate_nav_roles = frozenset(m.role for m in memberships)


@register.simple_tag(takes_context=True)
def nav_roles(context) -> frozenset[str]:
    """The roles the person holds anywhere right now (one query, cached for the request)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(request, "_tollgate_nav_roles", None)
    if cached is None:
        cached = frozenset(memberships_in_force(user).values_list("role", flat=True))
        request._tollgate_nav_roles = cached
    return cached


@register.filter
def audits(roles) -> bool:
    return Role.AUDITOR in roles or Role.ADMIN in roles


@register.filter
def administers(roles) -> bool:
    return Role.ADMIN in roles
