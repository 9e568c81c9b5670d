"""The pages a refused action answers with, the same in every app."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from portal.core.errors import Conflict


def stale(request, error: Exception, *, reference: str, doing: str, context: dict):
    """The 409 page: someone else acted first; `context` shows the record as it is now.

    A `Conflict` says itself what happened; a refused or concurrent transition does not, so the
    page says that `reference` changed while the person was `doing` something with it.
    """
    if isinstance(error, Conflict):
        message = str(error)
    else:
        message = f"{reference} changed while you were {doing}; nothing was changed."
    return render(request, "409.html", {**context, "message": message}, status=409)


def refused(request, error: PermissionDenied | str):
    """The 403 page, saying why."""
    return render(request, "403.html", {"message": str(error)}, status=403)
