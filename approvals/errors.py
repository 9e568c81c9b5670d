"""Errors the approval services raise besides Django's PermissionDenied and ValidationError."""


class Conflict(Exception):
    """Someone else got there first: the request or tier changed since the caller looked.

    The API answers 409 and the portal shows the message; retrying the same action is pointless.
    """
