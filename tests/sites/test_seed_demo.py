import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from sites import demo, services
from sites.models import Membership, MembershipChange, Region, Site, SiteUserObjectPermission
from sites.policies import Capability, sites_where


def seed():
    call_command("seed_demo", force=True, history=False, stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_demo_company_has_three_regions_nine_sites_and_every_persona(db):
    seed()

    assert Region.objects.count() == 3
    assert Site.objects.count() == 9
    usernames = set(get_user_model().objects.values_list("username", flat=True))
    assert {
        "admin",
        "requester",
        "site.manager",
        "regional.manager",
        "finance",
        "auditor",
        "outsider",
    } <= usernames


def counts():
    models = [Region, Site, Membership, MembershipChange, SiteUserObjectPermission]
    return {model.__name__: model.objects.count() for model in models}


def test_seeding_twice_changes_nothing(db):
    seed()
    before = counts()

    seed()

    assert counts() == before


def test_seeding_again_leaves_an_ended_membership_ended(db):
    seed()
    auditor = get_user_model().objects.get(username="auditor")
    services.membership_end(actor=None, membership=Membership.objects.get(user=auditor))

    seed()

    assert not sites_where(auditor, Capability.VIEW).exists()


def test_demo_regional_manager_reaches_every_benelux_site_and_the_outsider_none(db):
    seed()
    User = get_user_model()

    manager = User.objects.get(username="regional.manager")
    outsider = User.objects.get(username="outsider")

    benelux = {"AMS", "RTM", "ANR"}
    assert set(sites_where(manager, Capability.DECIDE).values_list("code", flat=True)) == benelux
    outsider_sites = set(sites_where(outsider, Capability.VIEW).values_list("code", flat=True))
    assert outsider_sites == {"MAN"}


def test_demo_users_share_the_published_password(db):
    seed()

    user = get_user_model().objects.get(username="finance")
    assert user.check_password(demo.PASSWORD)


def test_seed_refuses_without_debug_unless_forced(db, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("seed_demo")

    assert not Site.objects.exists()
