"""account.move: numbering, posting, back to draft, cancelling."""

from portal.integrations.odoo.sandbox.actions.common import action, rows_of
from portal.integrations.odoo.sandbox.errors import UserError

# -- account.move ------------------------------------------------------------------------

MOVE_PREFIX = {"in_invoice": "BILL", "out_invoice": "INV", "in_refund": "RBILL"}
MOVE_PREFIX |= {"out_refund": "RINV", "entry": "MISC"}


def move_number(env, move: dict) -> str:
    prefix = (
        f"{MOVE_PREFIX.get(move.get('move_type'), 'MISC')}/{(move.get('date') or env.now)[:4]}/"
    )
    return f"{prefix}{env.next_number(prefix):05d}"


@action("account.move", "action_post")
def move_action_post(env, model, ids):
    for move in rows_of(env, model, ids):
        if move["state"] == "posted":
            raise UserError(f"The entry {move['name']} (id {move['id']}) is already posted.")
        if move.get("move_type") != "entry" and not env.get(model, move, "invoice_line_ids"):
            raise UserError("You need to add a line before posting.")
        name = move["name"] if move.get("name") not in (None, "", "/") else move_number(env, move)
        env.set_state(model, [move["id"]], state="posted", name=name)
    return False


@action("account.move", "button_draft")
def move_button_draft(env, model, ids):
    moves = rows_of(env, model, ids)
    if any(m["state"] not in ("cancel", "posted") for m in moves):
        raise UserError("Only posted/cancelled journal entries can be reset to draft.")
    env.set_state(model, [m["id"] for m in moves], state="draft")


@action("account.move", "button_cancel")
def move_button_cancel(env, model, ids):
    moves = rows_of(env, model, ids)
    posted = [m["id"] for m in moves if m["state"] == "posted"]
    move_button_draft(env, model, posted)
    if any(env.row(model, m["id"])["state"] != "draft" for m in moves):
        raise UserError("Only draft journal entry can be cancelled.")
    env.set_state(model, [m["id"] for m in moves], state="cancel")
