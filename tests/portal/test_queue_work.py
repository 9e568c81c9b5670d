"""Working the queues in bulk: the queues one works by default, several cases assigned at once."""

from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from exceptions import services
from exceptions.models import CaseState, ExceptionCase
from portal.audit.models import AuditEvent
from sites.roles import Role
from tests.conftest import persona

QUEUES = reverse("exceptions:queues")
ASSIGN = reverse("exceptions:assign_many")


def _case(site, key, *, kind="invoice_mismatch", severity="medium", amount="120"):
    case, _ = services.case_raise(
        kind=kind,
        site=site,
        severity=severity,
        title=f"Case {key}",
        source="odoo",
        dedupe_key=f"queue-work:{key}",
        payload={},
        evidence={},
        amount_at_stake=Decimal(amount) if amount else None,
        currency="EUR" if amount else "",
    )
    return case


def _rows(page: str) -> int:
    return page.count('class="item queue-row')


def test_finance_sees_only_the_queues_it_works_by_default(client, site_a1, finance):
    bill = _case(site_a1, "bill")
    delay = _case(site_a1, "late", kind="shipment_delay", amount=None)
    client.force_login(finance)

    default = client.get(QUEUES).text
    every = client.get(QUEUES, {"show": "all"}).text

    assert bill.reference in default and delay.reference not in default
    assert "The queues you work: Finance, Procurement." in default
    assert bill.reference in every and delay.reference in every
    # The warehouse case is there to read, not to take.
    assert f'name="cases" value="{bill.pk}"' in every
    assert f'name="cases" value="{delay.pk}"' not in every
    assert "read-only" in every


def test_finance_assigns_three_cases_to_themself(client, site_a1, site_a2, finance):
    cases = [_case(site_a1, "a"), _case(site_a1, "b"), _case(site_a2, "c")]
    client.force_login(finance)

    page = client.post(ASSIGN, {"cases": [c.pk for c in cases], "to": "me"}).text

    assert "3 cases assigned to you" in page
    for case in cases:
        case.refresh_from_db()
        assert (case.owner, case.state) == (finance, CaseState.ASSIGNED)


def test_a_case_outside_the_persons_queues_is_refused_and_nothing_else_changes(
    client, site_a1, finance
):
    mine = [_case(site_a1, "m1"), _case(site_a1, "m2")]
    warehouse = _case(site_a1, "w", kind="shipment_delay", amount=None)
    client.force_login(finance)
    events_before = AuditEvent.objects.filter(action="case.assigned").count()

    page = client.post(ASSIGN, {"cases": [mine[0].pk, warehouse.pk, mine[1].pk], "to": "me"})

    text = page.text
    assert "2 cases assigned to you" in text
    assert "1 case could not be assigned; it is unchanged." in text
    assert f"{warehouse.reference} Case w: You do not work the Warehouse queue at A1." in text
    warehouse.refresh_from_db()
    assert (warehouse.owner, warehouse.state) == (None, CaseState.NEW)
    assert AuditEvent.objects.filter(action="case.assigned").count() == events_before + 2
    assert all(ExceptionCase.objects.get(pk=c.pk).owner == finance for c in mine)


def test_cases_go_to_a_colleague_who_works_the_queue(client, region_a, site_a1, finance):
    colleague = persona("finance.two", Role.FINANCE, region=region_a)
    colleague.first_name, colleague.last_name = "Noor", "Jansen"
    colleague.save()
    cases = [_case(site_a1, "x"), _case(site_a1, "y")]
    client.force_login(finance)

    queue = client.get(QUEUES).text
    page = client.post(
        ASSIGN, {"cases": [c.pk for c in cases], "to": "person", "assignee": colleague.pk}
    ).text

    assert "Noor Jansen" in queue  # offered in the picker
    assert "2 cases assigned to Noor Jansen" in page
    assert all(ExceptionCase.objects.get(pk=c.pk).owner == colleague for c in cases)


def test_someone_who_does_not_work_the_queue_is_not_offered_nor_accepted(
    client, site_a1, finance, site_manager
):
    case = _case(site_a1, "z")
    client.force_login(finance)

    queue = client.get(QUEUES).text
    response = client.post(
        ASSIGN, {"cases": [case.pk], "to": "person", "assignee": site_manager.pk}, follow=True
    )

    picker = queue[queue.index('id="bulk-assignee"') :].split("</select>")[0]
    assert f'<option value="{finance.pk}"' in picker
    assert f'<option value="{site_manager.pk}"' not in picker
    assert "Choose someone who works these queues at these sites." in response.text
    case.refresh_from_db()
    assert case.owner is None


def test_nothing_selected_says_so(client, site_a1, finance):
    _case(site_a1, "n")
    client.force_login(finance)

    response = client.post(ASSIGN, {"to": "me"}, follow=True)

    assert "Select the cases to assign first." in response.text


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_queue_page_costs_the_same_queries_however_many_cases(
    client, region_a, site_a1, site_a2, finance
):
    persona("finance.two", Role.FINANCE, region=region_a)
    client.force_login(finance)
    for i in range(3):
        _case(site_a1, f"few-{i}")
    few = _queries(client, QUEUES)
    for i in range(40):
        _case(site_a1 if i % 2 else site_a2, f"many-{i}", severity=["low", "high"][i % 2])
        _case(site_a1, f"late-{i}", kind="shipment_delay", amount=None)

    assert _queries(client, QUEUES) == few
    assert _queries(client, QUEUES + "?show=all") == few


def test_the_queue_shows_a_page_and_counts_the_rest(client, site_a1, finance, settings):
    client.force_login(finance)
    for i in range(103):
        _case(site_a1, f"p-{i}")

    page = client.get(QUEUES).text

    assert _rows(page) == 100
    assert "(100 of 103)" in page


def test_a_case_one_cannot_work_says_so_once(client, site_a1, auditor):
    case = _case(site_a1, "read")
    client.force_login(auditor)

    page = client.get(reverse("exceptions:detail", args=[case.pk])).text

    assert page.count("Only people who work the Finance queue at A1.") == 1
    assert 'id="why-read-only"' in page and 'id="reopen-form"' not in page


def test_age_counts_the_sites_working_days(site_a1):
    from datetime import UTC, datetime

    from exceptions.selectors import working_days

    friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    site_a1.business_days = "12345"

    assert working_days(friday, datetime(2026, 12, 4, 17, 0, tzinfo=UTC), site_a1) == 0
    assert working_days(friday, datetime(2026, 12, 7, 9, 0, tzinfo=UTC), site_a1) == 1  # Mon
    assert working_days(friday, datetime(2026, 12, 18, 9, 0, tzinfo=UTC), site_a1) == 10
    site_a1.business_days = "123456"
    assert working_days(friday, datetime(2026, 12, 7, 9, 0, tzinfo=UTC), site_a1) == 2  # Sat


def test_a_case_outside_ones_sites_answers_404_and_nothing_changes(
    client, site_a1, finance, outsider
):
    case = _case(site_a1, "far")
    client.force_login(outsider)

    response = client.post(ASSIGN, {"cases": [case.pk], "to": "me"})

    assert response.status_code == 404
    case.refresh_from_db()
    assert case.owner is None


def test_the_picker_names_people_as_written_and_escaped(client, region_a, site_a1, finance):
    _case(site_a1, "names")
    odd = persona("odd.name", Role.FINANCE, region=region_a)
    odd.first_name, odd.last_name = '<b>Ann & "Co"</b>', ""
    odd.save(update_fields=["first_name", "last_name"])
    bare = persona("no.name", Role.FINANCE, site=site_a1)
    bare.first_name = bare.last_name = ""
    bare.save(update_fields=["first_name", "last_name"])
    client.force_login(finance)

    page = client.get(QUEUES).text

    picker = page[page.index('id="bulk-assignee"') :].split("</select>")[0]
    escaped = "&lt;b&gt;Ann &amp; &quot;Co&quot;&lt;/b&gt;"
    assert f'<option value="{odd.pk}">{escaped}</option>' in picker
    assert f'<option value="{bare.pk}">no.name</option>' in picker
    assert f'<option value="{finance.pk}">{finance.get_full_name()}</option>' in picker
