"""The company the authorization matrix runs against, and who may reach what in it.

Two regions that mirror each other: Aurora (sites AX1, AX2) and Borealis (site ZQ9). Every
record the portal shows exists in both, each region's with markers of its own (titles,
counterparties, site codes, an amount) that must never appear in a page served to a person of
the other region.

What a persona may reach is worked out here from the role table (`sites.policies.GRANTED_BY`)
and the persona's memberships as written below, in plain Python: the matrix compares what the
portal answers with this, not with the SQL it is built from.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from approvals import email_links
from approvals import services as approval_services
from approvals.models import ApprovalPolicy
from approvals.specs import VersionSpec
from exceptions.models import ExceptionCase
from exceptions.services import case_assign, case_raise, case_resolve
from portal.api import services as api_services
from portal.audit.models import AuditEvent
from sites.policies import GRANTED_BY, Capability
from sites.roles import Role
from tests.approvals.conftest import _LONG_AGO, enterprise_rules, raise_request
from tests.conftest import persona
from tests.factories import RegionFactory, SiteFactory, UserFactory

PASSWORD = "correct-horse-battery"
REGION_OF = {"AX1": "RA", "AX2": "RA", "ZQ9": "RB"}
# The matrix's personas: (role, "site" or "region", code) for each membership they hold.
PERSONAS: dict[str, tuple[tuple[Role, str, str], ...]] = {
    "requester": ((Role.REQUESTER, "site", "AX1"),),
    "site_manager": ((Role.SITE_MANAGER, "site", "AX1"),),
    "regional_manager": ((Role.REGIONAL_MANAGER, "region", "RA"),),
    "finance": ((Role.FINANCE, "region", "RA"),),
    "auditor": ((Role.AUDITOR, "region", "RA"),),
    "administrator": ((Role.ADMIN, "region", "RA"),),
    "outsider": ((Role.SITE_MANAGER, "site", "ZQ9"),),
    "stranger": (),
}
# People the requests and cases need beyond the personas, who are not themselves viewers.
STAFF: dict[str, tuple[Role, str, str]] = {
    "sm.ax2": (Role.SITE_MANAGER, "site", "AX2"),
    "rm.a.second": (Role.REGIONAL_MANAGER, "region", "RA"),
    "rm.b": (Role.REGIONAL_MANAGER, "region", "RB"),
    "rm.b.second": (Role.REGIONAL_MANAGER, "region", "RB"),
    "finance.b": (Role.FINANCE, "region", "RB"),
    "requester.b": (Role.REQUESTER, "site", "ZQ9"),
}
USERNAMES = {
    "requester": "requester",
    "site_manager": "site.manager",
    "regional_manager": "regional.manager",
    "finance": "finance",
    "auditor": "auditor",
    "administrator": "administrator",
    "outsider": "outsider",
    "stranger": "stranger",
}

# Words only region A's or region B's records carry. Site codes are matched as whole words so
# that a random token (a CSRF value, a hashed file name) cannot match them by chance.
MARKERS = {
    "RA": (
        "Aurora crates",
        "Amberline Trading",
        "Aurora bill differs",
        "Aurora pallets short",
        "Aurora thresholds",
        "Aurora Depot",
        r"\bAX1\b",
        r"\bAX2\b",
        r"123[ ,.\u202f\u00a0]?456[.,]78",
    ),
    "RB": (
        "Zanzibar crates",
        "Quillfeather",
        "Zanzibar bill differs",
        "Zanzibar pallets short",
        "Borealis thresholds",
        "Zanzibar Quay",
        r"\bZQ9\b",
        r"987[ ,.\u202f\u00a0]?654[.,]32",
    ),
}


def leaked(text: str, region: str) -> list[str]:
    """The markers of `region` found in `text`."""
    return [marker for marker in MARKERS[region] if re.search(marker, text)]


@dataclass
class Viewer:
    """A persona as the matrix sees it: its user and where its memberships say it reaches."""

    name: str
    user: object = None
    memberships: tuple = ()

    @property
    def anonymous(self) -> bool:
        return self.user is None

    def reach(self, capability: Capability) -> set[str]:
        """Site codes where a membership of the persona grants `capability`."""
        return self.sites_holding(GRANTED_BY[capability])

    def sites_holding(self, roles) -> set[str]:
        """Site codes where the persona holds one of `roles`."""
        return {
            code
            for role, level, where in self.memberships
            if role in roles
            for code in (
                [where] if level == "site" else [c for c, r in REGION_OF.items() if r == where]
            )
        }


@dataclass
class World:
    """Everything the matrix opens, by key: `<thing>_a` in region A, `<thing>_b` in region B."""

    viewers: dict[str, Viewer]
    objects: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, key):
        return self.objects[key]


def build_world() -> World:
    """The company, built through the real services (the caller holds the transaction)."""
    regions = {
        "RA": RegionFactory(code="RA", name="Region Aurora"),
        "RB": RegionFactory(code="RB", name="Region Borealis"),
    }
    sites = {
        "AX1": SiteFactory(code="AX1", name="Aurora Depot", region=regions["RA"]),
        "AX2": SiteFactory(
            code="AX2", name="Aurora Annex", region=regions["RA"], time_zone="Europe/Brussels"
        ),
        "ZQ9": SiteFactory(
            code="ZQ9",
            name="Zanzibar Quay",
            region=regions["RB"],
            time_zone="Europe/London",
            currency="GBP",
        ),
    }

    def scope(level, code):
        return {"site": sites[code]} if level == "site" else {"region": regions[code]}

    viewers = {}
    for name, memberships in PERSONAS.items():
        if memberships:
            ((role, level, code),) = memberships
            user = persona(USERNAMES[name], role, **scope(level, code))
        else:
            user = UserFactory(username=USERNAMES[name])
        viewers[name] = Viewer(name, user, memberships)
    viewers["anonymous"] = Viewer("anonymous")
    staff = {
        username: persona(username, role, **scope(level, code))
        for username, (role, level, code) in STAFF.items()
    }
    world = World(viewers)
    _policies(world, regions)
    _requests(world, sites, staff)
    _cases(world, sites, viewers, staff)
    _delegations(world, sites, viewers, staff)
    _triage(world, sites)
    world.objects.update(
        site_a=sites["AX1"],
        site_b=sites["ZQ9"],
        event_a=AuditEvent.objects.filter(site=sites["AX1"]).order_by("sequence").first(),
        event_b=AuditEvent.objects.filter(site=sites["ZQ9"]).order_by("sequence").first(),
        token_b=api_services.token_create(actor=None, user=staff["rm.b"], name="carrier feed")[0],
    )
    return world


def _triage(world: World, sites) -> None:
    """A carrier mail waiting in triage at each region's first site (written directly: the
    matrix reads it, tests/integrations/mail tests how it comes there)."""
    import hashlib

    from portal.integrations.mail.models import Mailbox, MailMessage, Purpose, TriageItem

    for key, code in (("triage_a", "AX1"), ("triage_b", "ZQ9")):
        raw = (
            f"From: Rapid Freight <notices@freight.example>\r\n"
            f"Message-ID: <delay-{code}@freight.example>\r\n"
            f"Subject: Delay at {code}\r\n\r\nYour consignment is delayed.\r\n"
        ).encode()
        mailbox = Mailbox.objects.create(name=f"carrier-{code.lower()}", purpose=Purpose.CARRIER)
        message = MailMessage.objects.create(
            mailbox=mailbox,
            raw=raw,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            subject=f"Delay at {code}",
            sender="notices@freight.example",
            message_id=f"<delay-{code}@freight.example>",
            site=sites[code],
        )
        world.objects[key] = TriageItem.objects.create(
            message=message, site=sites[code], purpose=Purpose.CARRIER, reason="Read unsure."
        )


def _policies(world: World, regions) -> None:
    approval_services.currency_rate_add(
        actor=None, currency="GBP", units_per_base=Decimal("0.85"), valid_from=_LONG_AGO
    )
    spec = VersionSpec(rules=enterprise_rules())
    for name, region in (
        ("Enterprise framework", None),
        ("Aurora thresholds", regions["RA"]),
        ("Borealis thresholds", regions["RB"]),
    ):
        policy = approval_services.policy_create(actor=None, name=name, region=region)
        approval_services.policy_publish(actor=None, policy=policy, spec=spec)
    world.objects["policy_a"] = ApprovalPolicy.objects.get(name="Aurora thresholds")
    world.objects["policy_b"] = ApprovalPolicy.objects.get(name="Borealis thresholds")


def _requests(world: World, sites, staff) -> None:
    requester = world.viewers["requester"].user
    world.objects["request_a"] = raise_request(
        requester,
        sites["AX1"],
        amount="123456.78",
        title="Aurora crates for the spring season",
        counterparty="Amberline Trading",
    )
    world.objects["request_b"] = raise_request(
        staff["requester.b"],
        sites["ZQ9"],
        amount="987654.32",
        title="Zanzibar crates for the spring season",
        counterparty="Quillfeather Ltd",
    )
    # A routine request each, decided straight away, so that the dashboards have numbers.
    for site, who, title in (
        (sites["AX1"], requester, "Aurora crates, small lot"),
        (sites["ZQ9"], staff["requester.b"], "Zanzibar crates, small lot"),
    ):
        raise_request(who, site, amount="120", title=title)
    for key in ("request_a", "request_b"):
        step = world[key].steps.get(state="active", position=1)
        world.objects[f"step_{key[-1]}"] = step


def _case(site, key: str, kind: str, title: str, amount: str) -> ExceptionCase:
    case, _ = case_raise(
        kind=kind,
        site=site,
        severity="high",
        title=title,
        source="odoo",
        dedupe_key=f"matrix:{key}",
        payload={"partner": "Quillfeather Ltd" if key.endswith("b") else "Amberline Trading"},
        evidence={"difference": amount},
        amount_at_stake=Decimal(amount),
        currency=site.currency,
    )
    return case


def _cases(world: World, sites, viewers, staff) -> None:
    for suffix, site, who, name in (
        ("a", sites["AX1"], viewers["site_manager"].user, "Aurora"),
        ("b", sites["ZQ9"], viewers["outsider"].user, "Zanzibar"),
    ):
        amount = "123456.78" if suffix == "a" else "987654.32"
        world.objects[f"case_{suffix}"] = _case(
            site, f"open-{suffix}", "receipt_discrepancy", f"{name} pallets short", amount
        )
        _case(site, f"bill-{suffix}", "invoice_mismatch", f"{name} bill differs", amount)
        closed = _case(site, f"closed-{suffix}", "receipt_discrepancy", f"{name} recount", "5")
        case_assign(actor=who, case_id=closed.pk, owner=who)
        case_resolve(actor=who, case_id=closed.pk, code="stock_corrected", note="Recounted")
        world.objects[f"closed_case_{suffix}"] = ExceptionCase.objects.get(pk=closed.pk)


def _delegations(world: World, sites, viewers, staff) -> None:
    now = timezone.now()
    for suffix, delegator, delegate, site in (
        ("a", viewers["site_manager"].user, staff["rm.a.second"], sites["AX1"]),
        ("b", viewers["outsider"].user, staff["rm.b"], sites["ZQ9"]),
    ):
        world.objects[f"delegation_{suffix}"] = approval_services.delegation_create(
            actor=delegator,
            delegator=delegator,
            delegate=delegate,
            starts_at=now + timedelta(days=30),
            ends_at=now + timedelta(days=40),
            site=site,
            kind="transfer",
            max_amount=None,
            note="Holiday cover",
        )


def link_for(world: World, key: str, person) -> str:
    """An e-mail link to the active first tier of `key`'s request, made out to `person`."""
    return email_links.make_token(world[f"step_{key[-1]}"], person)


# --- the routes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    methods: frozenset[str]


def _walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or ""
            joined = f"{namespace}:{inner}" if namespace and inner else inner or namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), joined)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield prefix + str(pattern.pattern), name, pattern.callback


def _methods(callback) -> frozenset[str]:
    actions = getattr(callback, "actions", None)
    if actions is not None:
        return frozenset(actions)
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        names = [m for m in view_class.http_method_names if hasattr(view_class, m)]
        return frozenset(m for m in names if m not in {"head", "options"})
    return frozenset()


def routes() -> list[Route]:
    """Every named route of the URL configuration, Django's admin site aside."""
    found = {}
    for path, name, callback in _walk(get_resolver().url_patterns):
        if name is None or name.startswith("admin:"):
            continue
        found[name] = Route(name, path, _methods(callback))
    return sorted(found.values(), key=lambda route: route.name)


# --- Django's admin ---------------------------------------------------------------------------

# Staff who are not superusers hold Django's model permissions, and which ones is up to whoever
# set them up: the staff administrator of the matrix holds every one there is, so that only the
# scoping of each admin keeps region B out of reach. The superuser holds no membership at all.
ADMIN_PERSONAS = ("staff_admin", "superuser")
ADMIN_USERNAMES = {"staff_admin": "staff.admin", "superuser": "root"}

# What a staff administrator of region A must never see in the admin, beyond region B's
# markers: the region's name and the people who hold roles only there.
ADMIN_MARKERS_B = (
    *MARKERS["RB"],
    "Region Borealis",
    r"\boutsider\b",
    r"\brm\.b\b",
    r"\brequester\.b\b",
    r"\bfinance\.b\b",
)


def admin_leaked(text: str) -> list[str]:
    """The markers of region B (records, region name, its people) found in `text`."""
    return [marker for marker in ADMIN_MARKERS_B if re.search(marker, text)]


@dataclass(frozen=True)
class AdminModel:
    """What the admin of one model shows a staff administrator of region A.

    `scoped`: the admin's rows are those of the sites the person administers, so the region-A
    object opens and the region-B one answers 404 (or 403); `superuser`: the model is the whole
    company's and only superusers reach it (every page 403 or 404, nothing listed). `objects`
    names the region-A and region-B objects in the world (one for a company-wide model, None
    when the world holds none).
    """

    access: str
    objects: tuple[str, ...] | None


ADMIN_MODELS: dict[str, AdminModel] = {
    "auth.user": AdminModel("scoped", ("user_a", "user_b")),
    "auth.group": AdminModel("superuser", ("group",)),
    "axes.accessattempt": AdminModel("superuser", None),
    "axes.accesslog": AdminModel("superuser", None),
    "axes.accessfailurelog": AdminModel("superuser", None),
    "sites.region": AdminModel("scoped", ("region_a", "region_b")),
    "sites.site": AdminModel("scoped", ("site_a", "site_b")),
    "sites.membership": AdminModel("scoped", ("membership_a", "membership_b")),
    "approvals.approvalpolicy": AdminModel("scoped", ("policy_a", "policy_b")),
    "approvals.policyversion": AdminModel("scoped", ("version_a", "version_b")),
    "approvals.policytier": AdminModel("scoped", ("tier_a", "tier_b")),
    "approvals.approvalrequest": AdminModel("scoped", ("request_a", "request_b")),
    "approvals.delegation": AdminModel("scoped", ("delegation_a", "delegation_b")),
    "approvals.currencyrate": AdminModel("superuser", ("rate",)),
    "exceptions.queuerule": AdminModel("superuser", ("queue_rule",)),
    "exceptions.casedeadline": AdminModel("superuser", None),
    "exceptions.resolutioncode": AdminModel("superuser", None),
    "exceptions.exceptioncase": AdminModel("scoped", ("case_a", "case_b")),
    "audit.auditevent": AdminModel("scoped", ("event_a", "event_b")),
    "audit.auditcheckpoint": AdminModel("superuser", None),
    "notify.outboxmail": AdminModel("superuser", None),
    "webhooks.webhooksource": AdminModel("superuser", ("webhook_source",)),
    "webhooks.webhooksecret": AdminModel("superuser", ("webhook_secret",)),
    "webhooks.inbounddelivery": AdminModel("scoped", ("inbound_a", "inbound_b")),
    "webhooks.webhooksubscription": AdminModel("scoped", ("subscription_a", "subscription_b")),
    "webhooks.outboundevent": AdminModel("scoped", ("outbound_event_a", "outbound_event_b")),
    "webhooks.outbounddelivery": AdminModel("scoped", ("outbound_a", "outbound_b")),
    "webhooks.deliveryattempt": AdminModel("scoped", ("attempt_a", "attempt_b")),
    "api.apitoken": AdminModel("scoped", ("token_a", "token_b_admin")),
    "mail.mailbox": AdminModel("superuser", None),
    "mail.sendertemplate": AdminModel("superuser", None),
    "mail.mailmessage": AdminModel("superuser", None),
    "mail.triageitem": AdminModel("superuser", None),
    "mail.labelledexample": AdminModel("superuser", None),
}


def build_admin_world(world: World) -> None:
    """The admin's personas and one object of each admin'd model per region (the caller holds
    the transaction). Rows the services would refuse to write this way (deliveries, events)
    are written directly: the matrix reads them, it does not test how they are made."""
    from django.contrib.auth.models import Group, Permission

    from approvals.models import CurrencyRate, PolicyTier, PolicyVersion
    from exceptions.models import QueueRule
    from portal.webhooks import services as webhook_services
    from portal.webhooks.models import (
        DeliveryAttempt,
        InboundDelivery,
        OutboundDelivery,
        OutboundEvent,
        WebhookSource,
        WebhookSubscription,
    )
    from sites.models import Membership, Region

    region_a = Region.objects.get(code="RA")
    staff_admin = persona(ADMIN_USERNAMES["staff_admin"], Role.ADMIN, region=region_a)
    staff_admin.is_staff = True
    staff_admin.save(update_fields=["is_staff"])
    staff_admin.user_permissions.set(Permission.objects.all())
    root = UserFactory(username=ADMIN_USERNAMES["superuser"], is_staff=True, is_superuser=True)
    world.viewers["staff_admin"] = Viewer(
        "staff_admin", staff_admin, ((Role.ADMIN, "region", "RA"),)
    )
    world.viewers["superuser"] = Viewer("superuser", root, ())

    objects = world.objects
    site_manager, outsider = world.viewers["site_manager"].user, world.viewers["outsider"].user
    objects.update(
        user_a=site_manager,
        user_b=outsider,
        group=Group.objects.create(name="Warehouse leads"),
        region_a=region_a,
        region_b=Region.objects.get(code="RB"),
        membership_a=Membership.objects.get(user=site_manager),
        membership_b=Membership.objects.get(user=outsider),
        rate=CurrencyRate.objects.get(currency="GBP"),
        queue_rule=QueueRule.objects.create(
            kind="receipt_discrepancy", site=objects["site_a"], queue="warehouse"
        ),
    )
    for suffix in ("a", "b"):
        policy = objects[f"policy_{suffix}"]
        objects[f"version_{suffix}"] = PolicyVersion.objects.filter(policy=policy).first()
        objects[f"tier_{suffix}"] = PolicyTier.objects.filter(rule__version__policy=policy).first()

    source = WebhookSource.objects.create(name="matrix-carrier")
    objects["webhook_source"] = source
    objects["webhook_secret"] = webhook_services.webhook_secret_add(
        actor=None, source=source, secret="whsec_" + "bWF0cml4LXNlY3JldC1mb3ItdGhlLWFkbWlu"
    )
    for suffix, site, name in (
        ("a", objects["site_a"], "Aurora Depot"),
        ("b", objects["site_b"], "Zanzibar Quay"),
    ):
        code = site.code
        objects[f"inbound_{suffix}"] = InboundDelivery.objects.create(
            source=source,
            webhook_id=f"{code}-delivery-1",
            event_type="shipment.delayed",
            body=f'{{"warehouse": "{name}"}}',
            status="processed",
            site=site,
        )
        subscription = WebhookSubscription.objects.create(
            name=f"{name} feed",
            url=f"https://{code.lower()}.receiver.example/hook",
            event_types=["approval.decided"],
            region=site.region,
        )
        event = OutboundEvent.objects.create(
            event_id=f"evt_{code}_1", type="approval.decided", data={"site": code}, site=site
        )
        delivery = OutboundDelivery.objects.create(subscription=subscription, event=event)
        objects[f"subscription_{suffix}"] = subscription
        objects[f"outbound_event_{suffix}"] = event
        objects[f"outbound_{suffix}"] = delivery
        objects[f"attempt_{suffix}"] = DeliveryAttempt.objects.create(
            delivery=delivery, status_code=503, error=f"{name} receiver unavailable"
        )
    rm_b = next(user for user in _users_named("rm.b"))
    objects["token_a"] = api_services.token_create(
        actor=None, user=staff_admin, name="Aurora Depot feed"
    )[0]
    objects["token_b_admin"] = api_services.token_create(
        actor=None, user=rm_b, name="Zanzibar Quay feed"
    )[0]


def _users_named(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username)
