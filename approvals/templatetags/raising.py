"""Whether to offer "New request" to the person looking at a page."""

from django import template

from approvals import policies
from sites.policies import Capability, granted

register = template.Library()


@register.simple_tag(takes_context=True)
def may_raise_somewhere(context) -> bool:
    """True when the signed-in person may raise a request at some site (once a request: from
    the authority the page already built, or else one query)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if not hasattr(request, "_may_raise_somewhere"):
        authority = getattr(request, "_tollgate_authority", None)
        if authority is not None and authority.user_id == user.pk:
            # The same grant rows the query below reads, already loaded for this request.
            found = granted(authority.grants, Capability.RAISE_REQUEST)
        else:
            found = policies.raising_sites(user).exists()
        request._may_raise_somewhere = found
    return request._may_raise_somewhere
