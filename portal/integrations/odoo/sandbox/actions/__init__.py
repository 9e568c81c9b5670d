"""The business buttons of PROTOCOL.md section 4, with the quirks a client must survive.

Each action takes the call's `Env`, the model name and the record ids the client sent, and
returns what Odoo 17 returns (None makes the reply omit `result`). Rules worth knowing:

- `purchase.order.button_approve` silently skips orders the user may not approve and returns
  `{}` either way. An order may be approved when its company approves in one step, or its
  total is below the company's `po_double_validation_amount` (converted to the order's
  currency), or the user is in `purchase.group_purchase_manager`; never when the order has
  `x_sandbox_refuse_approve` set. The demo `admin` is a purchase manager; `buyer` is not.
  Like Odoo, it does not look at the state.
- `stock.picking.button_validate` answers the backorder wizard when a move is short, unless
  the context holds `skip_backorder`; pickings listed in `picking_ids_not_to_backorder` then
  get no backorder, the others do. Receipts add to `qty_received` on purchase lines.
- `stock.scrap.action_validate` answers the insufficient-quantity wizard when the source
  location holds less than the scrap quantity.

One module per model family (`purchase`, `stock`, `sale`, `account`, `mail`); importing this
package registers every button in `ACTIONS`.
"""

from portal.integrations.odoo.sandbox.actions.account import (
    MOVE_PREFIX,
    move_action_post,
    move_button_cancel,
    move_button_draft,
    move_number,
)
from portal.integrations.odoo.sandbox.actions.common import (
    ACTIONS,
    action,
    rows_of,
    user_has_group,
    xmlid_res_id,
)
from portal.integrations.odoo.sandbox.actions.mail import message_post
from portal.integrations.odoo.sandbox.actions.purchase import (
    approval_allowed,
    convert_amount,
    create_receipt,
    po_button_approve,
    po_button_cancel,
    po_button_confirm,
    po_button_done,
    po_button_draft,
    po_button_unlock,
)
from portal.integrations.odoo.sandbox.actions.sale import (
    so_action_cancel,
    so_action_confirm,
    so_action_draft,
    so_action_quotation_sent,
)
from portal.integrations.odoo.sandbox.actions.stock import (
    cancel_pickings,
    create_picking,
    customer_location,
    on_hand,
    picking_action_assign,
    picking_action_cancel,
    picking_action_confirm,
    picking_button_validate,
    scrap_action_validate,
    supplier_location,
)

__all__ = [
    "ACTIONS",
    "MOVE_PREFIX",
    "action",
    "approval_allowed",
    "cancel_pickings",
    "convert_amount",
    "create_picking",
    "create_receipt",
    "customer_location",
    "message_post",
    "move_action_post",
    "move_button_cancel",
    "move_button_draft",
    "move_number",
    "on_hand",
    "picking_action_assign",
    "picking_action_cancel",
    "picking_action_confirm",
    "picking_button_validate",
    "po_button_approve",
    "po_button_cancel",
    "po_button_confirm",
    "po_button_done",
    "po_button_draft",
    "po_button_unlock",
    "rows_of",
    "scrap_action_validate",
    "so_action_cancel",
    "so_action_confirm",
    "so_action_draft",
    "so_action_quotation_sent",
    "supplier_location",
    "user_has_group",
    "xmlid_res_id",
]
