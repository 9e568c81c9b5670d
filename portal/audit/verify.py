"""Recomputing the chain: is every stored event still exactly what was sealed?

Walks the ledger in sequence order with a server-side cursor, holding one event at a time, so
a ledger of any length is checked in constant memory. The first problem found is reported by
sequence number: a gap in the numbering, a `prev_hash` that is not the previous event's hash,
or a hash that no longer matches the event's stored fields.
"""

from dataclasses import dataclass

from portal.audit import chain
from portal.audit.models import AuditCheckpoint, AuditEvent

CHUNK = 2000


@dataclass(frozen=True)
class Verdict:
    intact: bool
    checked: int
    head_sequence: int | None = None
    head_hash: str = ""
    broken_at: int | None = None
    reason: str = ""


def verify_chain() -> Verdict:
    """Check the whole ledger from its first event."""
    expected_sequence, previous_hash, checked = 1, chain.GENESIS, 0
    events = AuditEvent.objects.order_by("sequence").iterator(chunk_size=CHUNK)
    for event in events:
        problem = _problem(event, expected_sequence, previous_hash)
        if problem:
            return Verdict(False, checked, broken_at=event.sequence, reason=problem)
        checked += 1
        expected_sequence, previous_hash = event.sequence + 1, event.hash
    head = expected_sequence - 1 if checked else None
    return Verdict(True, checked, head_sequence=head, head_hash=previous_hash)


def _problem(event: AuditEvent, expected_sequence: int, previous_hash: str) -> str:
    if event.sequence != expected_sequence:
        return f"expected event #{expected_sequence} here; events are missing"
    if event.prev_hash != previous_hash:
        return "its prev_hash is not the hash of the event before it"
    if chain.seal(chain.payload(event)) != event.hash:
        return "its stored fields no longer match its hash (the event was changed)"
    return ""


def check_checkpoints(verdict: Verdict) -> str:
    """Compare the chain with the checkpoints taken earlier; '' when they agree."""
    for checkpoint in AuditCheckpoint.objects.order_by("-sequence").iterator():
        stored = (
            AuditEvent.objects.filter(sequence=checkpoint.sequence)
            .values_list("hash", flat=True)
            .first()
        )
        if stored != checkpoint.hash:
            return (
                f"checkpoint of {checkpoint.at:%Y-%m-%d %H:%M} UTC recorded event "
                f"#{checkpoint.sequence} as {checkpoint.hash[:16]}…, the ledger now says "
                f"{(stored or 'nothing')[:16]}…: history was rewritten"
            )
    return ""
