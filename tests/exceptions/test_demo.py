"""The demo company's queue rules and deadlines: seeded by seed_demo, once, and in effect."""

from exceptions import routing
from exceptions.models import CaseDeadline, QueueRule
from sites.models import Site
from tests.seeded_demo import seed_demo


def seed():
    seed_demo(history=False)


def test_seed_demo_adds_the_queue_rules_and_deadlines_once(db):
    seed()
    seed()

    assert QueueRule.objects.count() == 4
    assert CaseDeadline.objects.count() == 5
    rotterdam, amsterdam, oslo = (Site.objects.get(code=c) for c in ("RTM", "AMS", "OSL"))
    assert routing.queue_for(kind="receipt_discrepancy", severity="low", site=rotterdam) == (
        "procurement"
    )
    assert routing.queue_for(kind="receipt_discrepancy", severity="low", site=amsterdam) == (
        "warehouse"
    )
    assert routing.queue_for(kind="return_damage", severity="low", site=oslo) == "warehouse"
    assert routing.queue_for(kind="shipment_delay", severity="critical", site=amsterdam) == (
        "customer_service"
    )
    finance_high = routing.deadline_for(severity="high", queue="finance")
    assert (finance_high.business_hours, finance_high.escalation_role) == (True, "finance")
