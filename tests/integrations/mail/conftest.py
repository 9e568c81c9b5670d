"""The company the mail tests read mail for: Benelux sites named as in the sample mails, the
demo mailboxes and sender templates, and the Odoo documents Tollgate already knows (cases the
sync opened), so that a mail naming one is placed at its site."""

from pathlib import Path

import pytest

from exceptions.services import case_raise
from portal.integrations.mail import demo
from portal.integrations.mail.models import Mailbox
from sites.roles import Role
from tests.conftest import persona
from tests.factories import RegionFactory, SiteFactory

SAMPLES = Path(__file__).parent / "samples"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Before xdist reads the groups: the tests of the IMAP server share one Dovecot per process,
    # so they all run in one process.
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if Path(str(item.fspath)).name == "test_poller.py":
            item.add_marker(pytest.mark.xdist_group("imap"))


@pytest.fixture
def benelux(db):
    region = RegionFactory(code="BNL", name="Benelux")
    return {
        code: SiteFactory(code=code, name=name, region=region)
        for code, name in [
            ("AMS", "Amsterdam Distribution Centre"),
            ("RTM", "Rotterdam Port Warehouse"),
            ("ANR", "Antwerp Cross-Dock"),
        ]
    }


@pytest.fixture
def mailboxes(benelux):
    demo.seed()
    return {box.name: box for box in Mailbox.objects.all()}


@pytest.fixture
def known_documents(benelux):
    """What the Odoo sync already raised: two late pickings and a receipt against P00031."""
    for site, picking in [("RTM", "RTM/OUT/00107"), ("AMS", "AMS/OUT/00077")]:
        case_raise(
            kind="shipment_delay",
            site=benelux[site],
            severity="low",
            title=f"Shipment {picking} is 1 day late",
            source="odoo",
            dedupe_key=f"stock.picking:{picking}:shipment_delay",
            payload={"name": picking},
            evidence={"days_late": 1},
        )
    case_raise(
        kind="receipt_discrepancy",
        site=benelux["AMS"],
        severity="medium",
        title="Receipt AMS/IN/00190 differs from order P00031 on 1 line",
        source="odoo",
        dedupe_key="odoo:stock.picking:190:receipt_discrepancy",
        payload={"name": "AMS/IN/00190", "origin": "P00031"},
        evidence={"origin": "P00031", "lines": []},
    )


@pytest.fixture
def ams_manager(benelux):
    """Works the warehouse and customer service queues at Amsterdam."""
    return persona("sam.site", Role.SITE_MANAGER, site=benelux["AMS"])


@pytest.fixture
def rtm_manager(benelux):
    return persona("ilse.rtm", Role.SITE_MANAGER, site=benelux["RTM"])


@pytest.fixture
def benelux_finance(benelux):
    return persona("femke.finance", Role.FINANCE, region=benelux["AMS"].region)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def receive(django_capture_on_commit_callbacks):
    """Store a mail as a poll would, and run what its commit enqueues (its reading)."""
    from portal.integrations.mail import services

    def store(mailbox, raw: bytes):
        with django_capture_on_commit_callbacks(execute=True):
            stored = services.message_receive(mailbox=mailbox, raw=raw)
        stored.message.refresh_from_db()
        return stored

    return store
