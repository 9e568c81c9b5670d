"""Whether to offer "New request" to the person looking at a page."""

from django import template

from approvals import policies

register = template.Library()


@register.simple_tag(takes_context=True)
def may_raise_somewhere(context) -> bool:
    """True when the signed-in person may raise a request at some site (one query, once)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if not hasattr(request, "_may_raise_somewhere"):
        request._may_raise_somewhere = policies.raising_sites(user).exists()
    return request._may_raise_somewhere
