"""Every write of the API app: tokens (audited) and idempotency claims (bookkeeping).

Creating and revoking a token are governance changes and go to the audit ledger. Touching a
token's last-used time and claiming, completing or releasing an idempotency key are request
bookkeeping, not decisions, so they are not audited.
"""

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.api import policies
from portal.api.models import ApiToken, IdempotencyKey
from portal.api.selectors import digest
from portal.core.ledger import ledger_record

TOKEN_PREFIX = "tg_"  # noqa: S105 - marks a Tollgate token, not a secret
VISIBLE_CHARACTERS = 10
ACTION_NAME = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$")
# last_used_at is written at most this often, so a busy integration does not write every call.
TOUCH_INTERVAL = timedelta(minutes=1)


def token_create(
    *,
    actor,
    user,
    name: str,
    expires_at: datetime | None = None,
    read_only: bool = False,
    actions: tuple[str, ...] | list[str] = (),
    within: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it with its secret, which is never available again.

    `actor` None is Tollgate itself (the create_api_token command). `within` is the token a
    request came through: the new token may not outlive it or allow more actions than it does.
    """
    if actor is not None and actor.pk != user.pk:
        raise PermissionDenied("A token can only be created for yourself.")
    now = timezone.now()
    if expires_at is None:
        expires_at = now + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
        if within is not None:
            expires_at = min(expires_at, within.expires_at)
    actions = sorted(set(actions))
    _check_token(user=user, name=name, expires_at=expires_at, actions=actions, now=now)
    if within is not None:
        _check_within(within, expires_at=expires_at, read_only=read_only, actions=actions)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip(),
            prefix=secret[:VISIBLE_CHARACTERS],
            digest=digest(secret),
            created_at=now,
            expires_at=expires_at,
            read_only=read_only,
            actions=actions,
            created_with=within,
        )
        ledger_record(
            action="api_token.created",
            actor=actor,
            obj=token,
            after=_token_facts(token),
            reference=f"API token {token} of {user.get_username()}",
        )
    return token, secret


def token_revoke(*, actor, token_id: int) -> ApiToken:
    """Revoke a token at once, and every token created through it; locks those tokens.

    Revoking a revoked token changes nothing (its offspring are revoked all the same).
    """
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token_id)
        if not policies.can_revoke_token(actor, token):
            raise ApiToken.DoesNotExist("No such token.")
        now = timezone.now()
        for revoked in [token, *_offspring(token)]:
            if revoked.revoked_at is None:
                _revoke(revoked, actor=actor, at=now, cause=token)
    return token


def _offspring(token: ApiToken) -> list[ApiToken]:
    """Every token created through `token`, through those, and so on; locked."""
    found: list[ApiToken] = []
    parents = [token.pk]
    while parents:
        children = list(
            ApiToken.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(created_with__in=parents)
            .order_by("pk")
        )
        found.extend(children)
        parents = [child.pk for child in children]
    return found


def _revoke(token: ApiToken, *, actor, at: datetime, cause: ApiToken) -> None:
    token.revoked_at = at
    token.save(update_fields=["revoked_at"])
    ledger_record(
        action="api_token.revoked",
        actor=actor,
        obj=token,
        before={"revoked_at": None},
        after={"revoked_at": at, **_token_facts(token)},
        comment="" if token.pk == cause.pk else f"Created through API token {cause}, revoked.",
        reference=f"API token {token} of {token.user.get_username()}",
    )


def token_touch(*, token: ApiToken) -> None:
    """Record that `token` was used now, unless that was recorded less than a minute ago."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def _check_token(*, user, name: str, expires_at: datetime, actions: list[str], now) -> None:
    errors: dict[str, list[str]] = {}
    if not name or not name.strip() or len(name.strip()) > 100:
        errors["name"] = ["A name of 1 to 100 characters is required."]
    longest = timedelta(days=settings.API_TOKEN_MAX_DAYS)
    if expires_at <= now:
        errors["expires_at"] = ["The expiry must be in the future."]
    elif expires_at > now + longest:
        errors["expires_at"] = [f"A token lives at most {longest.days} days."]
    wrong = [action for action in actions if not ACTION_NAME.match(action)]
    if wrong:
        errors["actions"] = [
            f"Not an action name: {', '.join(wrong)}. Actions look like 'approvals.approve'."
        ]
    if not user.is_active:
        errors["user"] = ["This user is deactivated."]
    if errors:
        raise ValidationError(errors)


def _check_within(within: ApiToken, *, expires_at, read_only: bool, actions: list[str]) -> None:
    """A token is a narrowing of its owner's rights: one made through it may not reach past it.
    Refused as a permission (403), like any call the calling token does not allow."""
    if expires_at > within.expires_at:
        raise PermissionDenied("A token cannot outlive the token it is created with.")
    if within.actions and (not actions or not set(actions) <= set(within.actions)):
        raise PermissionDenied(
            "A token can only allow actions the token it is created with allows."
        )
    if within.read_only and not read_only:
        raise PermissionDenied("A read-only token can only create read-only ones.")


def _token_facts(token: ApiToken) -> dict:
    return {
        "user": token.user.get_username(),
        "name": token.name,
        "prefix": token.prefix,
        "expires_at": token.expires_at,
        "read_only": token.read_only,
        "actions": token.actions,
    }


# --- idempotency keys -----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What claiming a key found: `row` is ours to run (`fresh`) or someone else's."""

    row: IdempotencyKey
    fresh: bool


def idempotency_claim(*, principal: str, key: str, fingerprint: str) -> Claim:
    """Claim `key` for `principal`, committed at once so that a concurrent duplicate sees it.

    The unique constraint decides between two concurrent claims. A claim left unfinished for
    longer than IDEMPOTENCY_ABANDONED_SECONDS (its process died) is taken over.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    principal=principal, key=key, fingerprint=fingerprint
                )
            return Claim(row, fresh=True)
        except IntegrityError:
            # Taken; unless its holder released it a moment ago, in which case claim again.
            row = IdempotencyKey.objects.filter(principal=principal, key=key).first()
        if row is not None:
            break
    else:
        # Claimed and released again and again meanwhile: for this caller, it is in progress.
        return Claim(IdempotencyKey(fingerprint=fingerprint), fresh=False)
    abandoned = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_ABANDONED_SECONDS)
    if row.completed_at is None and row.fingerprint == fingerprint and row.created_at < abandoned:
        taken = IdempotencyKey.objects.filter(
            pk=row.pk, completed_at=None, created_at=row.created_at
        ).update(created_at=timezone.now())
        if taken:
            return Claim(row, fresh=True)
    return Claim(row, fresh=False)


def idempotency_complete(
    *, claim: IdempotencyKey, status_code: int, content_type: str, body: bytes, headers: dict
) -> None:
    """Keep the response to a claimed key, to answer every later request with the same key."""
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        completed_at=timezone.now(),
        status_code=status_code,
        content_type=content_type,
        body=body,
        headers=headers,
    )


def idempotency_release(*, claim: IdempotencyKey) -> None:
    """Give a key back: the request did not run (or failed), and a retry with it must run."""
    IdempotencyKey.objects.filter(pk=claim.pk, completed_at=None).delete()


def idempotency_purge(*, older_than: timedelta | None = None) -> int:
    """Forget keys older than IDEMPOTENCY_KEY_HOURS; returns how many were forgotten."""
    older_than = older_than or timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
