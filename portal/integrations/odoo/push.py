"""Carrying one decision out in Odoo, idempotently: read first, act only if still needed.

`apply()` may run again after any crash (a worker killed between two calls, a lost reply), so
each step first looks at Odoo: an order already confirmed is not confirmed again, and the note
is posted only if no note carrying this outbox item's marker is on the record yet. Odoo's own
refusals (a silent skip of `button_approve`, a wizard instead of a validation) are permanent
errors with a message that says what Odoo did.
"""

from dataclasses import dataclass

from portal.integrations.odoo.client import OdooClient
from portal.integrations.odoo.errors import ErrorKind, OdooError


@dataclass(frozen=True)
class Target:
    """How an approval is carried out on one Odoo model."""

    done_states: frozenset[str]
    ready_states: frozenset[str]
    method: str
    cancel_method: str | None = None
    cancelled_states: frozenset[str] = frozenset({"cancel"})
    context: tuple[tuple[str, object], ...] = ()
    cancel_context: tuple[tuple[str, object], ...] = ()


TARGETS = {
    "purchase.order": Target(
        done_states=frozenset({"purchase", "done"}),
        ready_states=frozenset({"to approve"}),
        method="button_approve",
        cancel_method="button_cancel",
    ),
    "stock.picking": Target(
        done_states=frozenset({"done"}),
        ready_states=frozenset({"draft", "waiting", "confirmed", "assigned"}),
        method="button_validate",
        cancel_method="action_cancel",
        context=(("skip_backorder", True),),
    ),
    "stock.scrap": Target(
        done_states=frozenset({"done"}),
        ready_states=frozenset({"draft"}),
        method="action_validate",
    ),
    "sale.order": Target(
        done_states=frozenset({"sale", "done"}),
        ready_states=frozenset({"draft", "sent"}),
        method="action_confirm",
        cancel_method="action_cancel",
        cancel_context=(("disable_cancel_warning", True),),
    ),
}


@dataclass(frozen=True)
class Outcome:
    acted: bool
    message_id: int


def apply(client: OdooClient, item, *, note: str) -> Outcome:
    """Bring the Odoo record in line with the decision in `item`, then leave `note` on it once."""
    target = TARGETS.get(item.odoo_model)
    if target is None:
        raise OdooError(
            f"Tollgate does not write decisions back to {item.odoo_model}.",
            permanent=True,
            kind=ErrorKind.USER,
            model=item.odoo_model,
        )
    if item.action == "approve":
        acted = _approve(client, item, target)
    else:
        acted = _cancel(client, item, target) if item.cancel_in_odoo else False
    return Outcome(acted, _note_once(client, item, note))


def _state(client: OdooClient, item) -> str:
    rows = client.read(item.odoo_model, [item.odoo_id], ["state"])
    if not rows:
        raise OdooError(
            f"{item.odoo_model},{item.odoo_id} no longer exists in Odoo.",
            permanent=True,
            kind=ErrorKind.MISSING,
            model=item.odoo_model,
            method="read",
        )
    return rows[0]["state"]


def _approve(client: OdooClient, item, target: Target) -> bool:
    state = _state(client, item)
    if state in target.done_states:
        return False
    if state not in target.ready_states:
        raise _refused(item, f"it is in state {state!r}, which cannot be approved")
    context = dict(target.context)
    if item.odoo_model == "stock.picking":
        context["picking_ids_not_to_backorder"] = [item.odoo_id]
    if item.odoo_model == "stock.picking" and state != "assigned":
        # Validating needs reserved quantities, as a warehouse worker would first check
        # availability; Odoo's refusal (no stock) then says why, as an apply failure.
        if state == "draft":
            client.call(item.odoo_model, "action_confirm", [item.odoo_id])
        client.call(item.odoo_model, "action_assign", [item.odoo_id])
    reply = client.call(item.odoo_model, target.method, [item.odoo_id], context=context or None)
    if isinstance(reply, dict) and reply.get("res_model"):
        raise _refused(item, f"Odoo asked for confirmation in {reply['res_model']}")
    after = _state(client, item)
    if after not in target.done_states:
        # purchase.order.button_approve returns {} whether or not it approved.
        raise _refused(item, f"Odoo left it in state {after!r} (its own rules refused)")
    return True


def _cancel(client: OdooClient, item, target: Target) -> bool:
    if target.cancel_method is None:
        return False
    if _state(client, item) in target.cancelled_states:
        return False
    context = dict(target.cancel_context) or None
    client.call(item.odoo_model, target.cancel_method, [item.odoo_id], context=context)
    return True


def _note_once(client: OdooClient, item, note: str) -> int:
    existing = client.search(
        "mail.message",
        [
            ["model", "=", item.odoo_model],
            ["res_id", "=", item.odoo_id],
            ["body", "ilike", item.marker],
        ],
        limit=1,
    )
    if existing:
        return existing[0]
    body = f"{note}\n{item.marker}"
    return client.message_post(item.odoo_model, item.odoo_id, body=body)


def _refused(item, why: str) -> OdooError:
    return OdooError(
        f"Odoo did not carry out the approval of {item.odoo_model},{item.odoo_id}: {why}.",
        permanent=True,
        kind=ErrorKind.USER,
        model=item.odoo_model,
    )
