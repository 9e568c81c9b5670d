"""Checkpoints: the chain's head, written down outside the database every day.

Someone able to rewrite the database could rewrite the whole chain consistently. A checkpoint
sent elsewhere (a file on another volume, or a webhook into another system) records which hash
event #N had; `verify_audit` compares the ledger with the checkpoints it holds, and an auditor
can compare it with the copies outside.
"""

import json
import logging
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from portal.audit.models import AuditCheckpoint, AuditEvent

logger = logging.getLogger(__name__)
_TIMEOUT = 10


def checkpoint_take() -> AuditCheckpoint | None:
    """Record the ledger's head, and send it to AUDIT_CHECKPOINT_SINK when one is set."""
    head = (
        AuditEvent.objects.filter(sequence__isnull=False)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    if head is None:
        return None
    sink = settings.AUDIT_CHECKPOINT_SINK or ""
    checkpoint = AuditCheckpoint.objects.create(
        sequence=head[0], hash=head[1], sink=_describe(sink)
    )
    if sink:
        _deliver(checkpoint, sink)
    return checkpoint


def _describe(sink: str) -> str:
    parts = urlsplit(sink)
    # Never store credentials or query tokens a webhook URL may carry.
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}" if parts.scheme else sink


def _deliver(checkpoint: AuditCheckpoint, sink: str) -> None:
    line = {"sequence": checkpoint.sequence, "hash": checkpoint.hash, "at": checkpoint.at}
    body = json.dumps(line, default=str)
    try:
        if sink.startswith(("http://", "https://")):
            request = urllib.request.Request(  # noqa: S310 - the operator's own endpoint
                sink, data=body.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=_TIMEOUT):  # noqa: S310
                pass
        else:
            path = Path(sink.removeprefix("file://"))
            with path.open("a", encoding="utf-8") as out:
                out.write(body + "\n")
    except OSError as error:
        checkpoint.error = f"{type(error).__name__}: could not reach the checkpoint sink"
        checkpoint.save(update_fields=["error"])
        logger.error("audit checkpoint #%s not delivered: %s", checkpoint.sequence, error)
        return
    checkpoint.delivered = True
    checkpoint.save(update_fields=["delivered"])


def sink_file() -> Path | None:
    """The file AUDIT_CHECKPOINT_SINK writes checkpoints to, if it names a file."""
    sink = settings.AUDIT_CHECKPOINT_SINK or ""
    if not sink or sink.startswith(("http://", "https://")):
        return None
    return Path(sink.removeprefix("file://"))


def read_sink(path: Path) -> list[dict]:
    """The checkpoints a sink file holds, in the order written: {"sequence", "hash", "at"}.

    Raises ValueError naming the line when one is not a checkpoint, so that a damaged copy is
    reported rather than half-read.
    """
    found = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                checkpoint = {
                    "sequence": int(entry["sequence"]),
                    "hash": str(entry["hash"]),
                    "at": str(entry.get("at", "")),
                }
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}, line {number}: not a checkpoint") from None
            if checkpoint["sequence"] < 1 or len(checkpoint["hash"]) != 64:
                raise ValueError(f"{path}, line {number}: not a checkpoint")
            found.append(checkpoint)
    return found
