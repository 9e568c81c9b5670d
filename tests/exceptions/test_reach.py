"""A person's reach read once (`policies.reach_of`) scopes cases exactly as the SQL filters do.

The queue page reads the grants once and filters by lists of sites; everything else asks the
`EXISTS` form. Both must keep and drop the same cases for every kind of person: region and site
roles, a closed site, a membership that ended or has not started, a deactivated account.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions import policies
from exceptions.models import ExceptionCase, Queue
from exceptions.services import case_raise
from sites.roles import Role
from sites.services import site_update
from tests.conftest import persona
from tests.factories import SiteFactory, UserFactory, grant


def _cases_everywhere(sites) -> None:
    for site in sites:
        for queue in Queue.values:
            case, _ = case_raise(
                kind="invoice_mismatch",
                site=site,
                severity="medium",
                title=f"{queue} at {site.code}",
                source="odoo",
                dedupe_key=f"reach:{site.code}:{queue}",
                payload={},
                evidence={},
            )
            ExceptionCase.objects.filter(pk=case.pk).update(queue=queue)


@pytest.fixture
def people(region_a, site_a1, site_a2, site_b1):
    closed = SiteFactory(code="A3", region=region_a)
    _cases_everywhere([site_a1, site_a2, site_b1, closed])
    site_update(actor=None, site=closed, active=False)
    now = timezone.now()

    ended = persona(
        "ended",
        Role.FINANCE,
        region=region_a,
        valid_from=now - timedelta(days=9),
        valid_to=now - timedelta(days=1),
    )
    later = persona("later", Role.SITE_MANAGER, site=site_a1, valid_from=now + timedelta(days=2))
    mixed = persona("mixed", Role.SITE_MANAGER, site=site_a1)
    grant(mixed, Role.FINANCE, site=site_b1)
    grant(mixed, Role.AUDITOR, site=closed)
    gone = persona("gone", Role.FINANCE, region=region_a)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    return {
        "finance": persona("finance", Role.FINANCE, region=region_a),
        "regional": persona("regional", Role.REGIONAL_MANAGER, region=region_a),
        "closed-site manager": persona("closed.manager", Role.SITE_MANAGER, site=closed),
        "auditor": persona("auditor", Role.AUDITOR, region=region_a),
        "ended": ended,
        "later": later,
        "mixed": mixed,
        "gone": gone,
        "stranger": UserFactory(username="stranger"),
    }


def _titles(condition) -> set[str]:
    return set(ExceptionCase.objects.filter(condition).values_list("title", flat=True))


def test_the_reach_sees_and_works_the_cases_the_sql_filters_keep(people):
    assert _titles(policies.worked_cases(people["finance"])), "the fixture works some cases"
    for name, person in people.items():
        reach = policies.reach_of(person)

        assert _titles(policies.visible_cases(person, reach=reach)) == _titles(
            policies.visible_cases(person)
        ), name
        assert _titles(policies.worked_cases(person, reach=reach)) == _titles(
            policies.worked_cases(person)
        ), name


def test_the_reach_at_a_moment_is_the_grants_in_force_then(people):
    finance = people["ended"]
    a_week_ago = timezone.now() - timedelta(days=7)

    then = policies.reach_of(finance, at=a_week_ago)

    assert _titles(policies.worked_cases(finance, reach=then)) == _titles(
        policies.worked_cases(finance, at=a_week_ago)
    )
    assert {"finance at A1", "procurement at A2"} <= _titles(
        policies.worked_cases(finance, reach=then)
    )
    assert _titles(policies.worked_cases(finance, reach=policies.reach_of(finance))) == set()


def test_a_closed_site_is_seen_but_not_worked(people):
    reach = policies.reach_of(people["closed-site manager"])

    assert _titles(policies.visible_cases(None, reach=reach)) == {
        f"{queue} at A3" for queue in Queue.values
    }
    assert _titles(policies.worked_cases(None, reach=reach)) == set()
