"""The demo as it opens: the first pull from the sandbox puts routine work on the fast path,
and every write-back of it reaches Odoo; the only refusal is the one the demo keeps on purpose
(an order cancelled in Odoo before its approval arrived)."""

from collections import Counter

from portal.integrations.odoo import demo as odoo_demo
from portal.integrations.odoo import services, sync
from portal.integrations.odoo.client import get_client
from portal.integrations.odoo.models import OutboxItem, OutboxState
from tests.integrations.odoo.push_support import connect_tollgate, odoo_admin, state_in_odoo


def test_every_write_back_of_the_fresh_demo_reaches_odoo_but_the_deliberate_refusal(
    db, settings, odoo_sandbox
):
    connect_tollgate(settings, odoo_sandbox, history=True)
    sync.sync_all(get_client())
    pending = list(
        OutboxItem.objects.filter(state=OutboxState.PENDING)
        .order_by("pk")
        .values_list("pk", "odoo_model", "odoo_id", "action")
    )
    # The pull fast-paths work of every kind the demo's Odoo holds, stock moves included.
    kinds = Counter(model for _, model, _, _ in pending)
    assert kinds["stock.scrap"] >= 10 and kinds["stock.picking"] >= 5, kinds

    statuses = Counter(services.outbox_apply(item_id=pk).status for pk, _, _, _ in pending)

    assert statuses == {"applied": len(pending)}
    failed = OutboxItem.objects.filter(state=OutboxState.FAILED)
    assert [(item.odoo_model, item.odoo_id) for item in failed] == [
        ("purchase.order", odoo_demo.ORDER_ID)
    ]
    assert not OutboxItem.objects.filter(state=OutboxState.PENDING).exists()
    odoo = odoo_admin(odoo_sandbox)
    for _, model, record_id, action in pending:
        if action == "approve" and model in ("stock.scrap", "stock.picking"):
            assert state_in_odoo(odoo, model, record_id) == "done", (model, record_id)
