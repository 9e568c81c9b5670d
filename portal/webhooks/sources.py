"""The senders as this process last read them: a source and its active secrets, checked on use.

A source and its secrets change a few times a year, yet reading them cost every delivery two
queries. Each process keeps what it read (`sender`), with a stamp the database computes from the
source's id and every active secret (`stamp_sql`). The query that deduplicates a delivery reads
the current stamp beside its answer, and a delivery checked against a stamp that no longer
matches is checked again from fresh rows before anything is stored (`Stale`). So a retired
secret or a deactivated source stops working in every process at once, as if nothing were kept;
only what was read is reused, never what was decided.
"""

import threading
from dataclasses import dataclass, field

from django.db import connection
from standardwebhooks import Webhook

from portal.webhooks.models import WebhookSource


class Stale(Exception):
    """The source or its secrets changed since this process read them."""


@dataclass(frozen=True)
class Sender:
    """A source as read at one moment: the row, a stamp of it and one signer per secret."""

    source: WebhookSource
    stamp: str = field(repr=False)
    # Each holds a secret: never shown, so kept out of the repr.
    signers: tuple[Webhook, ...] = field(repr=False)


_senders: dict[str, Sender] = {}
_lock = threading.Lock()


def sender(name: str, *, fresh: bool = False) -> Sender | None:
    """The active source called `name` with its signers; None if there is none.

    Kept per process once read; `fresh` reads it again (after `Stale`, or before refusing a
    signature that a secret added since might have made).
    """
    kept = None if fresh else _senders.get(name)
    if kept is not None:
        return kept
    loaded = _load(name)
    with _lock:
        if loaded is None:
            _senders.pop(name, None)
        else:
            _senders[name] = loaded
    return loaded


def stamp_sql() -> str:
    """An SQL expression for the stamp of the active source named by its one parameter.

    NULL when there is no such active source; otherwise a digest of the source's id and each
    active secret's id and text, so the secrets themselves never leave the database in it.
    """
    return _STAMP[connection.vendor == "postgresql"]


# Both list the secrets in id order: PostgreSQL says so, SQLite reads them in that order.
_STAMP = {
    True: """(SELECT md5(s.id || '/' || COALESCE((
        SELECT string_agg(k.id || ':' || k.secret, ' ' ORDER BY k.id)
        FROM webhooks_webhooksecret k WHERE k.source_id = s.id AND k.retired_at IS NULL
    ), '')) FROM webhooks_webhooksource s WHERE s.name = %s AND s.active)""",
    False: """(SELECT MD5(s.id || '/' || COALESCE((
        SELECT group_concat(k.id || ':' || k.secret, ' ')
        FROM webhooks_webhooksecret k WHERE k.source_id = s.id AND k.retired_at IS NULL
    ), '')) FROM webhooks_webhooksource s WHERE s.name = %s AND s.active)""",
}


def _load(name: str) -> Sender | None:
    sql = (
        f"SELECT s.id, {stamp_sql()}, k.secret FROM webhooks_webhooksource s "  # noqa: S608 - constant SQL
        "LEFT JOIN webhooks_webhooksecret k ON k.source_id = s.id AND k.retired_at IS NULL "
        "WHERE s.name = %s AND s.active ORDER BY k.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [name, name])
        rows = cursor.fetchall()
    if not rows:
        return None
    row = WebhookSource(pk=rows[0][0], name=name, active=True)
    signers = tuple(_signer(text) for _, _, text in rows if text is not None)
    return Sender(source=row, stamp=rows[0][1], signers=tuple(s for s in signers if s))


def _signer(secret: str) -> Webhook | None:
    # A secret the services would have refused (stored behind their back) verifies nothing.
    try:
        return Webhook(secret)
    except Exception:  # the library raises several types for an unreadable secret
        return None
