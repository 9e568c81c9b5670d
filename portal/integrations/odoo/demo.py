"""The demo's one write-back that Odoo refused, so the "failed Odoo write-backs" chart and the
administrator's retry have something to show on a fresh demo.

The request is a real fast-path purchase that went through the real outbox; only the Odoo it
met is a stand-in that refuses every call, as an Odoo would whose order had been cancelled by
hand before the approval arrived.
"""

from datetime import timedelta
from decimal import Decimal

import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from portal.integrations.odoo.errors import OdooError
from portal.integrations.odoo.models import OutboxItem

ORDER = "P00990"
ORDER_ID = 990_001
REFUSAL = (
    f"Odoo refused to approve {ORDER}: the order was cancelled in Odoo before the approval arrived."
)


class _CancelledOrder:
    """An Odoo that answers every call for the order with the refusal."""

    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            raise OdooError(REFUSAL, permanent=True, model="purchase.order", method=name)

        return refuse


def seed_history(*, now=None) -> int:
    """Add the refused write-back once; returns how many were added (0 or 1)."""
    from approvals import services as approvals
    from sites.models import Site

    if OutboxItem.objects.filter(odoo_model="purchase.order", odoo_id=ORDER_ID).exists():
        return 0
    requester = get_user_model().objects.filter(username="requester").first()
    site = Site.objects.filter(code="AMS").first()
    if requester is None or site is None:
        return 0
    asked = (now or timezone.now()) - timedelta(days=2)
    asked = asked.replace(hour=9, minute=40, second=0, microsecond=0)
    while asked.weekday() >= 5:  # asked for on a working morning
        asked -= timedelta(days=1)
    with time_machine.travel(asked, tick=False):
        request = approvals.request_raise(
            requester=requester,
            kind="purchase",
            site=site,
            title=f"{ORDER} from Nordic Paper AB",
            reason="Paper towels and till rolls for the next two months.",
            amount=Decimal("860.00"),
            currency="EUR",
            counterparty="Nordic Paper AB",
            counterparty_ref="res.partner,990",
            odoo_model="purchase.order",
            odoo_id=ORDER_ID,
            # Made in Odoo by its buyer: risk signals judge that person and moment.
            odoo_author_ref="res.users,990",
            odoo_author="Lars Visser",
            odoo_asked_at=asked,
            details={"odoo_reference": ORDER, "counterparty_since": "2018-04-03"},
        )
    item = OutboxItem.objects.filter(request=request).first()
    if item is None:  # not fast-pathed under a changed policy: nothing was sent to Odoo
        return 0
    from portal.integrations.odoo.services import outbox_apply

    with time_machine.travel(asked + timedelta(minutes=2), tick=False):
        outbox_apply(item_id=item.pk, client_factory=_CancelledOrder)
    return 1
