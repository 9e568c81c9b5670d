"""What a token's narrowing allows; what its user may do is still decided by each app's policies.

The action of a call is named f"{view.basename}.{view.action}" for a viewset, e.g.
"approvals.list", "approvals.retrieve", "approvals.approve", "exceptions.resolve",
"tokens.create". A view that is not a viewset names its action in an `api_action` attribute.
A token narrowed to actions may call only those; a read-only token only safe methods. A call
that passes here still runs every policy check as the token's user: a token never grants more
than its user has.
"""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from portal.api.models import ApiToken


def action_name(view) -> str | None:
    """The action a request to `view` performs, by the convention above; None if unnamed."""
    explicit = getattr(view, "api_action", None)
    if explicit:
        return explicit
    basename, action = getattr(view, "basename", None), getattr(view, "action", None)
    if basename and action:
        return f"{basename}.{action}"
    return None


class TokenScope(BasePermission):
    """Refuses what a token's narrowing excludes (403 `token_read_only` / `token_action_…`)."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        safe = request.method in SAFE_METHODS
        if token.read_only and not safe:
            raise exceptions.PermissionDenied(
                "This token is read-only: it cannot change anything.", code="token_read_only"
            )
        action = action_name(view)
        if not token.allows(action=action, safe=safe):
            raise exceptions.PermissionDenied(
                f"This token does not allow the action {action or 'of this endpoint'!r}.",
                code="token_action_not_allowed",
            )
        return True
