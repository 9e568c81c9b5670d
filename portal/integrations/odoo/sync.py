"""The pull: read what changed in Odoo since the last run, model by model, in batches.

Each model is read with `search_read` ordered by `(write_date, id)` and paged by that key (not
by offset, which shifts when records change mid-run), with an explicit field list. A run starts
`ODOO_SYNC_OVERLAP_SECONDS` before the cursor, because Odoo stamps `write_date` at transaction
start and a long transaction can commit after a later one; rows already handled in that window
are recognised and skipped. They are recognised by id and a digest of the fields read rather
than by `(id, write_date)`: `write_date` has one-second resolution, so a record changed twice
within a second carries the same stamp twice, and the second change would be skipped. Each
batch is handled and the cursor moved in one database transaction, so a crash re-reads a batch
and never skips one.

A row that cannot be mapped (an unknown warehouse, no policy in force) is reported on the
cursor and in the log and the batch goes on; it is read again the next time it changes.
"""

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import notifications
from portal.integrations.odoo import links, mapping
from portal.integrations.odoo.client import OdooClient, get_client
from portal.integrations.odoo.errors import OdooError
from portal.integrations.odoo.models import SyncCursor
from portal.integrations.odoo.records import ODOO_DATETIME

logger = logging.getLogger(__name__)
# Problems kept on the cursor for an administrator to read; the log has them all.
_PROBLEMS_KEPT = 20


@dataclass
class SyncResult:
    fetched: int = 0
    handled: int = 0
    skipped: int = 0
    batches: int = 0
    outcomes: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def sync_all(
    client: OdooClient | None = None, *, batch_size: int | None = None, models=None
) -> dict[str, SyncResult]:
    """Pull every mapped model (or those named) once."""
    client = client or get_client()
    context = mapping.Context(client)
    handlers = [h for h in mapping.HANDLERS if models is None or h.model in models]
    results = {}
    for handler in handlers:
        # One model failing (Odoo refusing it, a bug in its mapping) must not starve the rest.
        try:
            results[handler.model] = sync_model(
                client, handler, context=context, batch_size=batch_size
            )
        except Exception as error:
            logger.exception("odoo sync of %s failed", handler.model)
            failed = SyncResult(problems=[f"{handler.model}: the run stopped: {_describe(error)}"])
            _finish(handler.model, failed)
            results[handler.model] = failed
    if any(result.batches and not result.problems for result in results.values()):
        _remember_version(client)
    return results


def _remember_version(client: OdooClient) -> None:
    """Keep the server's version for links into Odoo (known after a run: no extra call)."""
    try:
        links.remember_server_version(client.version())
    except OdooError:
        logger.info("odoo version unknown after sync; links keep the old form")


def sync_model(
    client: OdooClient,
    handler,
    *,
    context: "mapping.Context | None" = None,
    batch_size: int | None = None,
) -> SyncResult:
    """Pull one model from its cursor to now."""
    context = context or mapping.Context(client)
    batch_size = batch_size or settings.ODOO_SYNC_BATCH_SIZE
    result = SyncResult()
    cursor, _ = SyncCursor.objects.get_or_create(model=handler.model)
    after: tuple[str, int] | None = None
    start = _window_start(cursor)
    while True:
        rows = client.search_read(
            handler.model,
            _page_domain(handler, start, after),
            handler.fields,
            order="write_date asc, id asc",
            limit=batch_size,
        )
        result.fetched += len(rows)
        result.batches += 1
        if rows:
            _handle_batch(handler, rows, context, result)
            after = (rows[-1]["write_date"], rows[-1]["id"])
        if len(rows) < batch_size:
            break
    _finish(handler.model, result)
    return result


def _window_start(cursor: SyncCursor) -> str | None:
    if cursor.write_date is None:
        return None
    start = cursor.write_date - timedelta(seconds=settings.ODOO_SYNC_OVERLAP_SECONDS)
    return start.astimezone(UTC).strftime(ODOO_DATETIME)


def _page_domain(handler, start: str | None, after: tuple[str, int] | None) -> list:
    domain = list(handler.domain)
    if after is not None:
        write_date, record_id = after
        domain += [
            "|",
            ["write_date", ">", write_date],
            "&",
            ["write_date", "=", write_date],
            ["id", ">", record_id],
        ]
    elif start is not None:
        domain.append(["write_date", ">=", start])
    return domain


def _handle_batch(handler, rows: list[dict], context, result: SyncResult) -> None:
    with transaction.atomic(), notifications.batched():
        cursor = SyncCursor.objects.select_for_update().get(model=handler.model)
        fresh = [
            row for row in rows if cursor.recent.get(str(row["id"]), [None])[-1] != _digest(row)
        ]
        result.skipped += len(rows) - len(fresh)
        for row in _prepared(handler, fresh, context, result):
            _handle_row(handler, row, context, result)
        _advance(cursor, rows)


def _prepared(handler, rows: list[dict], context, result: SyncResult) -> list[dict]:
    """The rows whose lookups could be read; one call per batch, row by row if that fails."""
    if not rows:
        return rows
    try:
        context.prepare(handler, rows)
        return rows
    except OdooError as error:
        if error.transient:
            raise  # Odoo is struggling: the whole run stops and the next one re-reads the batch
    ready = []
    for row in rows:
        try:
            context.prepare(handler, [row])
        except OdooError as error:
            if error.transient:
                raise
            _unmapped(handler, row, error, result)
        else:
            ready.append(row)
    return ready


def _handle_row(handler, row: dict, context, result: SyncResult) -> None:
    relevant = getattr(handler, "relevant", None)
    if relevant is not None and not relevant(row, context):
        result.handled += 1
        result.outcomes["ignored"] += 1
        return
    try:
        with transaction.atomic():
            outcome = handler.handle(row, context)
    except (ValidationError, PermissionDenied, LookupError) as problem:
        _unmapped(handler, row, problem, result)
        return
    except Exception as problem:
        # A row the mapping cannot cope with is reported and skipped, never allowed to block
        # every later row; it is read again when it next changes in Odoo.
        logger.exception("odoo sync failed on %s,%s", handler.model, row.get("id"))
        _unmapped(handler, row, problem, result)
        return
    result.handled += 1
    result.outcomes[outcome] += 1


def _unmapped(handler, row: dict, problem: Exception, result: SyncResult) -> None:
    text = f"{handler.model},{row.get('id')}: {_describe(problem)}"
    logger.warning("odoo sync could not map %s", text)
    result.problems.append(text)
    result.handled += 1
    result.outcomes["unmapped"] += 1


def _describe(problem: Exception) -> str:
    if isinstance(problem, ValidationError):
        return "; ".join(problem.messages)
    if isinstance(problem, (LookupError, PermissionDenied, OdooError)):
        return str(problem)
    return f"{type(problem).__name__}: {problem}"


def _advance(cursor: SyncCursor, rows: list[dict]) -> None:
    newest = max(row["write_date"] for row in rows)
    newest_at = _parse(newest)
    if cursor.write_date is None or newest_at > cursor.write_date:
        cursor.write_date = newest_at
    horizon = cursor.write_date - timedelta(seconds=settings.ODOO_SYNC_OVERLAP_SECONDS)
    # Odoo's stamps are fixed-width "YYYY-MM-DD HH:MM:SS": as text they sort as they are, so
    # the rows in the window are kept without parsing every stamp of every batch again.
    horizon_stamp = horizon.astimezone(UTC).strftime(ODOO_DATETIME)
    recent = dict(cursor.recent)
    recent.update({str(row["id"]): [row["write_date"], _digest(row)] for row in rows})
    cursor.recent = {key: seen for key, seen in recent.items() if seen[0] >= horizon_stamp}
    cursor.records_read += len(rows)
    cursor.save(update_fields=["write_date", "recent", "records_read"])


def _finish(model: str, result: SyncResult) -> None:
    SyncCursor.objects.filter(model=model).update(
        last_run_at=timezone.now(),
        last_error="\n".join(result.problems[-_PROBLEMS_KEPT:]),
    )


def _digest(row: dict) -> str:
    return hashlib.blake2b(
        json.dumps(row, sort_keys=True, default=str).encode(), digest_size=12
    ).hexdigest()


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, ODOO_DATETIME).replace(tzinfo=UTC)
