"""Queue rules and deadlines: the most specific rule wins, the fixed defaults stay the fallback."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from exceptions import routing, services
from exceptions.models import CaseDeadline, Queue, QueueRule
from exceptions.services import case_raise
from portal.audit.models import AuditEvent
from sites.roles import Role

# A Friday, 15:00 in Amsterdam (CEST, UTC+2).
FRIDAY_AFTERNOON = datetime(2026, 5, 8, 13, 0, tzinfo=UTC)


def rule(**fields) -> QueueRule:
    return services.queue_rule_save(actor=None, rule=QueueRule(**fields))


def deadline(**fields) -> CaseDeadline:
    return services.case_deadline_save(actor=None, deadline=CaseDeadline(**fields))


def raised(site, *, kind="shipment_delay", severity="medium", key="k", at=None):
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity=severity,
        title="A case",
        source="manual",
        dedupe_key=key,
        payload={},
        evidence={},
        at=at,
    )
    return case


def test_without_rules_each_kind_lands_in_its_default_queue(site_a1):
    assert routing.queue_for(kind="shipment_delay", severity="high", site=site_a1) == "warehouse"
    assert routing.queue_for(kind="invoice_mismatch", severity="low", site=site_a1) == "finance"


def test_a_site_rule_beats_a_region_rule_which_beats_a_global_one(site_a1, site_a2, site_b1):
    rule(kind="shipment_delay", queue=Queue.PROCUREMENT)
    rule(kind="shipment_delay", region=site_a1.region, queue=Queue.CUSTOMER_SERVICE)
    rule(kind="shipment_delay", site=site_a1, queue=Queue.FINANCE)

    def queue(site):
        return routing.queue_for(kind="shipment_delay", severity="low", site=site)

    assert (queue(site_a1), queue(site_a2), queue(site_b1)) == (
        Queue.FINANCE,
        Queue.CUSTOMER_SERVICE,
        Queue.PROCUREMENT,
    )


def test_a_severity_threshold_applies_from_that_severity_up(site_a1):
    rule(kind="shipment_delay", min_severity="high", queue=Queue.CUSTOMER_SERVICE)

    routed = {
        severity: routing.queue_for(kind="shipment_delay", severity=severity, site=site_a1)
        for severity in ("low", "medium", "high", "critical")
    }

    assert routed == {
        "low": Queue.WAREHOUSE,
        "medium": Queue.WAREHOUSE,
        "high": Queue.CUSTOMER_SERVICE,
        "critical": Queue.CUSTOMER_SERVICE,
    }


def test_within_a_scope_the_kind_then_the_higher_threshold_decides(site_a1):
    rule(min_severity="critical", region=site_a1.region, queue=Queue.CUSTOMER_SERVICE)
    rule(kind="shipment_delay", region=site_a1.region, queue=Queue.PROCUREMENT)
    rule(kind="shipment_delay", min_severity="high", region=site_a1.region, queue=Queue.FINANCE)

    def queue(kind, severity):
        return routing.queue_for(kind=kind, severity=severity, site=site_a1)

    assert queue("shipment_delay", "critical") == Queue.FINANCE
    assert queue("shipment_delay", "medium") == Queue.PROCUREMENT
    assert queue("asn_conflict", "critical") == Queue.CUSTOMER_SERVICE
    # A region rule for any kind still beats a company-wide rule for this very kind.
    rule(kind="asn_conflict", min_severity="critical", queue=Queue.WAREHOUSE)
    assert queue("asn_conflict", "critical") == Queue.CUSTOMER_SERVICE


def test_of_two_equally_specific_rules_the_older_one_wins(site_a1):
    rule(kind="asn_conflict", site=site_a1, queue=Queue.WAREHOUSE)
    rule(kind="asn_conflict", site=site_a1, queue=Queue.FINANCE)

    assert routing.queue_for(kind="asn_conflict", severity="low", site=site_a1) == "warehouse"


def test_a_rule_names_a_site_or_a_region_not_both(site_a1):
    with pytest.raises(ValidationError, match="not both"):
        rule(site=site_a1, region=site_a1.region, queue=Queue.FINANCE)
    assert not QueueRule.objects.exists()


def test_a_raised_case_takes_the_rules_queue_and_keeps_it_when_rules_change(site_a1):
    changed = rule(kind="shipment_delay", site=site_a1, queue=Queue.CUSTOMER_SERVICE)
    case = raised(site_a1)

    changed.queue = Queue.FINANCE
    services.queue_rule_save(actor=None, rule=changed)

    case.refresh_from_db()
    assert case.queue == Queue.CUSTOMER_SERVICE
    assert raised(site_a1, key="other").queue == Queue.FINANCE


@pytest.mark.parametrize(
    ("severity", "hours"), [("critical", 4), ("high", 24), ("medium", 72), ("low", 168)]
)
def test_without_deadline_rows_the_due_time_follows_the_default_hours(site_a1, severity, hours):
    case = raised(site_a1, severity=severity, at=FRIDAY_AFTERNOON)

    assert case.due_at == FRIDAY_AFTERNOON + timedelta(hours=hours)
    assert case.remind_at == FRIDAY_AFTERNOON + timedelta(hours=hours * 0.75)
    assert case.escalation_role == Role.REGIONAL_MANAGER


def test_configured_hours_per_severity_and_a_queue_override(site_a1):
    deadline(severity="high", hours=Decimal("10"), remind_at_percent=50)
    deadline(severity="high", queue=Queue.FINANCE, hours=Decimal("2"), escalation_role="finance")

    warehouse = raised(site_a1, severity="high", key="w", at=FRIDAY_AFTERNOON)
    finance = raised(
        site_a1, kind="invoice_mismatch", severity="high", key="f", at=FRIDAY_AFTERNOON
    )
    medium = raised(site_a1, severity="medium", key="m", at=FRIDAY_AFTERNOON)

    assert (warehouse.due_at, warehouse.remind_at) == (
        FRIDAY_AFTERNOON + timedelta(hours=10),
        FRIDAY_AFTERNOON + timedelta(hours=5),
    )
    assert (finance.due_at, finance.escalation_role) == (
        FRIDAY_AFTERNOON + timedelta(hours=2),
        Role.FINANCE,
    )
    assert medium.due_at == FRIDAY_AFTERNOON + timedelta(hours=72)


def test_business_hours_are_counted_in_the_sites_own_time_zone(site_a1):
    # A1 keeps the default working week (08:00–18:00 Monday to Friday, Amsterdam time): four
    # working hours from Friday 15:00 are three on Friday and one on Monday morning.
    deadline(severity="critical", hours=Decimal("4"), business_hours=True)

    case = raised(site_a1, severity="critical", at=FRIDAY_AFTERNOON)

    assert case.due_at == datetime(2026, 5, 11, 7, 0, tzinfo=UTC)  # Monday 09:00 in Amsterdam


def test_only_a_superuser_changes_rules_and_every_change_is_audited(site_a1, finance):
    with pytest.raises(PermissionDenied):
        services.queue_rule_save(actor=finance, rule=QueueRule(queue=Queue.FINANCE))

    created = rule(kind="price_variance", site=site_a1, queue=Queue.PROCUREMENT)
    services.queue_rule_delete(actor=None, rule_id=created.pk)
    set_hours = deadline(severity="low", hours=Decimal("100"))
    set_hours.hours = Decimal("90")
    services.case_deadline_save(actor=None, deadline=set_hours)

    assert not QueueRule.objects.exists()
    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions[-4:] == [
        "queue_rule.created",
        "queue_rule.deleted",
        "case_deadline.created",
        "case_deadline.changed",
    ]
    changed = AuditEvent.objects.get(action="case_deadline.changed")
    assert (changed.before["hours"], changed.after["hours"]) == ("100.00", "90")
