"""The demo company's queue rules and case deadlines, created through the services; safe to run
again (only what is missing is added, and a rule an administrator changed stays as it is).

Beyond the fixed default queues: a critical late shipment is the customer service desk's to
tell the customer about; Rotterdam's port receipts are settled by procurement with the
shipping lines; in the Nordics damaged returns go back to the warehouse for inspection; and
big ASN conflicts anywhere are finance's. Deadlines: 4 clock hours for critical cases, a
working day for high ones (finance's in its own business hours, escalated to finance), three
and seven days below that.
"""

from decimal import Decimal

from exceptions import services
from exceptions.models import CaseDeadline, Queue, QueueRule
from sites.models import Region, Site
from sites.roles import Role

D = Decimal

# (kind, minimum severity, site code, region code, queue, why)
RULES = [
    (
        "shipment_delay",
        "critical",
        "",
        "",
        Queue.CUSTOMER_SERVICE,
        "Customers hear about critical delays from customer service first.",
    ),
    (
        "receipt_discrepancy",
        "",
        "RTM",
        "",
        Queue.PROCUREMENT,
        "Port receipts are settled with the shipping lines by procurement.",
    ),
    (
        "return_damage",
        "",
        "",
        "NOR",
        Queue.WAREHOUSE,
        "Nordic warehouses inspect damaged returns before any claim.",
    ),
    ("asn_conflict", "high", "", "", Queue.FINANCE, "Large ASN conflicts change what is paid."),
]

# (severity, queue, hours, business hours, remind at %, escalation role)
DEADLINES = [
    ("critical", "", D("4"), False, 50, Role.REGIONAL_MANAGER),
    ("high", "", D("24"), False, 75, Role.REGIONAL_MANAGER),
    ("high", Queue.FINANCE, D("10"), True, 75, Role.FINANCE),
    ("medium", "", D("72"), False, 75, Role.REGIONAL_MANAGER),
    ("low", "", D("168"), False, 75, Role.REGIONAL_MANAGER),
]


def seed() -> None:
    """Create the demo queue rules and deadlines that do not exist yet."""
    for kind, severity, site_code, region_code, queue, note in RULES:
        scope = {
            "site": Site.objects.filter(code=site_code).first() if site_code else None,
            "region": Region.objects.filter(code=region_code).first() if region_code else None,
        }
        if (site_code and scope["site"] is None) or (region_code and scope["region"] is None):
            continue
        if not QueueRule.objects.filter(kind=kind, min_severity=severity, **scope).exists():
            rule = QueueRule(kind=kind, min_severity=severity, queue=queue, note=note, **scope)
            services.queue_rule_save(actor=None, rule=rule)
    for severity, queue, hours, business_hours, remind, escalation_role in DEADLINES:
        if not CaseDeadline.objects.filter(severity=severity, queue=queue).exists():
            deadline = CaseDeadline(
                severity=severity,
                queue=queue,
                hours=hours,
                business_hours=business_hours,
                remind_at_percent=remind,
                escalation_role=escalation_role,
            )
            services.case_deadline_save(actor=None, deadline=deadline)
