"""Ledger events read as words on the auditor's pages, with the request page's own sentences."""

import pytest
from django.urls import reverse

from approvals import request_selectors
from tests.audit.activity import _working_morning, activity, company_auditor, matrix, staffed

__all__ = ["_working_morning", "activity", "company_auditor", "matrix", "staffed"]

pytestmark = pytest.mark.django_db


def _events_table(client, **search) -> str:
    page = client.get(reverse("audit:home"), search).text
    return page[page.index('id="events"') : page.index("</table>", page.index('id="events"'))]


def test_auditor_searches_events_told_in_words_not_codes(client, activity, auditor):
    client.force_login(auditor)

    table = _events_table(client)

    assert "Sent for review" in table and "Approved" in table
    for code in ("request.in_review", "request.created", "decision.approve"):
        assert code not in table


def test_auditor_sees_who_acted_by_name_with_the_account_as_a_hint(
    client, activity, auditor, requester
):
    client.force_login(auditor)

    table = _events_table(client)

    assert requester.get_full_name() in table
    assert f'<span class="muted username">{requester.username}</span>' in table


def test_events_of_one_zone_name_it_once_in_the_heading(client, activity, auditor):
    client.force_login(auditor)

    table = _events_table(client, site="A1")

    assert "When (CET)" in table
    assert " CET</time>" not in table and "today 10:00</time>" in table


def test_events_of_several_zones_name_each_times_zone(client, activity, auditor):
    client.force_login(auditor)

    table = _events_table(client)

    assert '<th scope="col">When</th>' in table
    assert " CET</time>" in table


def test_the_search_offers_actions_by_name(client, activity, auditor):
    client.force_login(auditor)

    page = client.get(reverse("audit:home")).text

    assert '<option value="request.rejected">The request is rejected</option>' in page
    assert "Actor (username)" not in page and "e.g. request.approved" not in page


def test_the_trail_and_the_request_page_tell_an_event_the_same_way(
    client, activity, auditor, site_manager
):
    approved = activity["approved"]
    client.force_login(auditor)

    trail = client.get(reverse("audit:trail", args=["request", approved.pk])).text

    for entry in request_selectors.timeline(auditor, approved):
        assert entry.sentence in trail


def test_the_trail_shows_recorded_amounts_as_money_and_states_as_words(client, activity, auditor):
    client.force_login(auditor)

    trail = client.get(reverse("audit:trail", args=["request", activity["approved"].pk])).text

    assert "amount: €1,200.00" in trail and "amount: 1200" not in trail
    assert "state: in review" in trail and "in_review" not in trail


def test_every_action_the_code_records_has_a_sentence():
    # An action without one reads as its code turned into words ("Webhook secret added by …"),
    # which is how an auditor would meet a new action nobody named.
    import re
    from pathlib import Path

    from portal.audit.sentences import EVENT_SENTENCES

    root = Path(__file__).resolve().parents[2]
    recorded = set()
    for app in ("approvals", "exceptions", "sites", "portal"):
        for module in (root / app).rglob("*.py"):
            if "migrations" not in module.parts:
                recorded |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', module.read_text()))
    assert len(recorded) > 50
    assert sorted(recorded - set(EVENT_SENTENCES)) == []
