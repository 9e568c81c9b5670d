"""Who may manage which API tokens.

A token is a personal credential: its owner lists and revokes it; nobody else sees it (the API
answers 404 for another person's token). A superuser may also revoke any token, to shut out a
leaked credential at once; they can never see or use its secret, which is not stored.
"""


def can_revoke_token(user, token) -> bool:
    """Whether `user` may revoke `token`; `user` None is Tollgate itself (a command)."""
    return user is None or token.user_id == user.pk or user.is_superuser


def sees_every_token(user) -> bool:
    """Whether `user` lists everyone's tokens in the admin (an active superuser, to revoke a
    leaked one); anyone else lists their own."""
    return user.is_active and user.is_superuser
