"""From Odoo records to Tollgate requests and cases.

Each handler names its model, the fields it reads and what a row means:

* `purchase.order` in `to approve` → a purchase request (site from
  `picking_type_id.warehouse_id`);
* `stock.picking`: an internal transfer carrying the approval marker (the boolean custom field
  named by ODOO_TRANSFER_MARKER_FIELD, `x_tollgate_approval` by default, set in Odoo on a
  transfer between two warehouses that needs a decision) → a transfer request; a receipt or
  delivery past its scheduled date and not done → a shipment-delay case; a done receipt whose
  quantities differ from the demand beyond tolerance → a receipt-discrepancy case;
* draft `stock.scrap` worth at least ODOO_WRITE_OFF_THRESHOLD (quantity × product cost) → a
  write-off request;
* draft/sent `sale.order` with a line under the price floor (cost × (1 + ODOO_PRICE_FLOOR_MARGIN_PCT
  %)) or over the discount cap → a price-override request; whose customer would go over the
  credit limit → a credit-exception request;
* a vendor bill (`account.move`, `in_invoice`) whose lines differ from order price × received
  quantity beyond tolerance → an invoice-mismatch case (three-way match).

Each request keeps who made the record in Odoo (`create_uid`, else the responsible user) and
when it was made or asked for approval there (`date_order`, else `create_date`), so that the
risk signals judge the person and the moment in Odoo, never the integration user or the moment
Tollgate synced; a counterparty's age is its `create_date` in Odoo. Readable line items
(`odoo_snapshot["line_items"]`, strings only) show people what the record holds; the drift key
stays `odoo_snapshot["lines"]`.

A record that maps to an existing request updates it (drift goes back to review); it never
creates a duplicate. Lookups a batch needs (warehouses, products, partners, lines) are read in
one call per kind and batch and cached for the run.
"""

from portal.integrations.odoo.mapping.common import Context, Draft, upsert_request
from portal.integrations.odoo.mapping.picking import Pickings
from portal.integrations.odoo.mapping.purchase_order import PurchaseOrders
from portal.integrations.odoo.mapping.sale_order import SaleOrders
from portal.integrations.odoo.mapping.scrap import Scraps
from portal.integrations.odoo.mapping.vendor_bill import VendorBills

HANDLERS = [PurchaseOrders(), Pickings(), Scraps(), SaleOrders(), VendorBills()]

__all__ = [
    "HANDLERS",
    "Context",
    "Draft",
    "Pickings",
    "PurchaseOrders",
    "SaleOrders",
    "Scraps",
    "VendorBills",
    "upsert_request",
]
