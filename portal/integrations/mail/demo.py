"""The demo company's shared mailboxes and the sender templates of its carriers and suppliers;
safe to run again (only what is missing is added; what an administrator changed stays).

The mailboxes have no server: the demo feeds them by hand with `manage.py ingest_mail FILE.eml
--mailbox NAME`, so they need no credentials. A real installation gives each a host and the
names of the environment variables holding its login and password.
"""

from decimal import Decimal

from portal.integrations.mail import services
from portal.integrations.mail.models import EventKind, Mailbox, Purpose, SenderTemplate

MAILBOXES = [
    # (name, purpose, confidence threshold)
    ("carrier", Purpose.CARRIER, Decimal("0.80")),
    ("supplier", Purpose.SUPPLIER, Decimal("0.80")),
    ("ap", Purpose.ACCOUNTS_PAYABLE, Decimal("0.85")),
]

TEMPLATES = [
    {
        "name": "Rapid Freight delay notice",
        "purpose": Purpose.CARRIER,
        "sender_pattern": r"^notifications@rapidfreight\.example$",
        "subject_pattern": r"^Delay notice",
        "event_kind": EventKind.SHIPMENT_DELAYED,
        "field_patterns": {
            "picking_ref": r"Your reference:\s*(\S+)",
            "tracking_number": r"Tracking number:\s*([A-Z0-9]+)",
            "status": r"Status:\s*([^\n]+)",
            "new_eta": r"New delivery date:\s*([^\n]+)",
        },
    },
    {
        "name": "Rapid Freight failed delivery",
        "purpose": Purpose.CARRIER,
        "sender_pattern": r"^notifications@rapidfreight\.example$",
        "subject_pattern": r"^Delivery attempt failed",
        "event_kind": EventKind.DELIVERY_FAILED,
        "field_patterns": {
            "picking_ref": r"Your reference:\s*(\S+)",
            "tracking_number": r"Tracking number:\s*([A-Z0-9]+)",
            "status": r"Reason:\s*([^\n]+)",
        },
    },
    {
        "name": "Nordlicht Logistik Verspätung",
        "purpose": Purpose.CARRIER,
        "sender_pattern": r"@nordlicht-logistik\.example$",
        "subject_pattern": r"Lieferverzögerung",
        "event_kind": EventKind.SHIPMENT_DELAYED,
        "field_patterns": {
            "picking_ref": r"Ihre Referenz:\s*(\S+)",
            "tracking_number": r"Sendungsnummer:\s*([A-Z0-9]+)",
            "status": r"Grund:\s*([^\n]+)",
            "new_eta": r"Neuer Liefertermin:\s*([^\n]+)",
        },
    },
    {
        "name": "Holland Tools shipping notice",
        "purpose": Purpose.SUPPLIER,
        "sender_pattern": r"@hollandtools\.example$",
        "subject_pattern": r"Shipping notice",
        "event_kind": EventKind.SHORT_SHIPMENT,
        "field_patterns": {
            "order_ref": r"Order:\s*(P\d+)",
            "product": r"Product:\s*([^\n]+)",
            "quantity": r"Shipped:\s*(\d+)",
            "ordered_quantity": r"Ordered:\s*(\d+)",
        },
    },
]


def seed() -> None:
    """Create the demo mailboxes and sender templates that do not exist yet."""
    for name, purpose, threshold in MAILBOXES:
        if not Mailbox.objects.filter(name=name).exists():
            mailbox = Mailbox(name=name, purpose=purpose, confidence_threshold=threshold)
            services.mailbox_save(actor=None, mailbox=mailbox)
    for spec in TEMPLATES:
        if not SenderTemplate.objects.filter(name=spec["name"]).exists():
            services.sender_template_save(actor=None, template=SenderTemplate(**spec))
