"""The demo company: a European distributor with three regions and nine warehouses."""

from dataclasses import dataclass

from sites.roles import Role


@dataclass(frozen=True)
class DemoSite:
    code: str
    name: str
    region: str
    time_zone: str
    currency: str
    odoo_warehouse_id: int


@dataclass(frozen=True)
class DemoPersona:
    username: str
    first_name: str
    last_name: str
    role: Role
    scope: str  # a site code or a region code
    does: str
    superuser: bool = False


# code -> (name, Odoo res.company id)
REGIONS = {
    "BNL": ("Benelux", 1),
    "NOR": ("Nordics", 2),
    "UKI": ("UK & Ireland", 3),
}

SITES = [
    DemoSite("AMS", "Amsterdam Distribution Centre", "BNL", "Europe/Amsterdam", "EUR", 1),
    DemoSite("RTM", "Rotterdam Port Warehouse", "BNL", "Europe/Amsterdam", "EUR", 2),
    DemoSite("ANR", "Antwerp Cross-Dock", "BNL", "Europe/Brussels", "EUR", 3),
    DemoSite("STO", "Stockholm Warehouse", "NOR", "Europe/Stockholm", "SEK", 4),
    DemoSite("OSL", "Oslo Warehouse", "NOR", "Europe/Oslo", "NOK", 5),
    DemoSite("CPH", "Copenhagen Warehouse", "NOR", "Europe/Copenhagen", "DKK", 6),
    DemoSite("LON", "London Park Royal", "UKI", "Europe/London", "GBP", 7),
    DemoSite("MAN", "Manchester Trafford", "UKI", "Europe/London", "GBP", 8),
    DemoSite("DUB", "Dublin Ballymount", "UKI", "Europe/Dublin", "EUR", 9),
]

PERSONAS = [
    DemoPersona(
        "admin",
        "Alex",
        "Morgan",
        Role.ADMIN,
        "BNL",
        "administers sites, roles and policies; Django superuser",
        superuser=True,
    ),
    DemoPersona(
        "requester",
        "Ruth",
        "Okafor",
        Role.REQUESTER,
        "AMS",
        "buyer at Amsterdam: raises and tracks requests",
    ),
    DemoPersona(
        "site.manager",
        "Sander",
        "de Vries",
        Role.SITE_MANAGER,
        "AMS",
        "decides first tiers at Amsterdam",
    ),
    DemoPersona(
        "regional.manager",
        "Rosa",
        "Martens",
        Role.REGIONAL_MANAGER,
        "BNL",
        "decides higher tiers at every Benelux site",
    ),
    DemoPersona(
        "finance",
        "Femke",
        "Janssen",
        Role.FINANCE,
        "BNL",
        "decides above finance thresholds; works invoice and credit queues",
    ),
    DemoPersona(
        "auditor",
        "Arjun",
        "Mehta",
        Role.AUDITOR,
        "BNL",
        "reads and exports the Benelux decision trail",
    ),
    DemoPersona(
        "outsider",
        "Oliver",
        "Grant",
        Role.SITE_MANAGER,
        "MAN",
        "site manager at Manchester: sees nothing of Benelux",
    ),
]
# Colleagues who are not personas of their own but staff the rest of the company, so that every
# tier of the demo policy resolves to someone at every site. Same password as the personas.
STAFF = [
    DemoPersona(
        "rm.benelux.2", "Bram", "Peeters", Role.REGIONAL_MANAGER, "BNL", "second Benelux manager"
    ),
    DemoPersona("sm.rotterdam", "Ilse", "Bakker", Role.SITE_MANAGER, "RTM", "site manager"),
    DemoPersona("req.rotterdam", "Daan", "Visser", Role.REQUESTER, "RTM", "buyer"),
    DemoPersona("req.antwerp", "Elise", "Claes", Role.REQUESTER, "ANR", "warehouse lead"),
    DemoPersona("sm.antwerp", "Lotte", "Wouters", Role.SITE_MANAGER, "ANR", "site manager"),
    DemoPersona("sm.stockholm", "Erik", "Lindqvist", Role.SITE_MANAGER, "STO", "site manager"),
    DemoPersona("sm.oslo", "Ingrid", "Hansen", Role.SITE_MANAGER, "OSL", "site manager"),
    DemoPersona("sm.copenhagen", "Mads", "Nielsen", Role.SITE_MANAGER, "CPH", "site manager"),
    DemoPersona("sm.london", "Priya", "Shah", Role.SITE_MANAGER, "LON", "site manager"),
    DemoPersona("sm.dublin", "Niamh", "Byrne", Role.SITE_MANAGER, "DUB", "site manager"),
    DemoPersona("rm.nordics", "Astrid", "Berg", Role.REGIONAL_MANAGER, "NOR", "regional manager"),
    DemoPersona("rm.nordics.2", "Lars", "Dahl", Role.REGIONAL_MANAGER, "NOR", "regional manager"),
    DemoPersona("rm.uki", "James", "Walker", Role.REGIONAL_MANAGER, "UKI", "regional manager"),
    DemoPersona("rm.uki.2", "Fiona", "Kelly", Role.REGIONAL_MANAGER, "UKI", "regional manager"),
    DemoPersona("finance.nordics", "Sofia", "Nyberg", Role.FINANCE, "NOR", "finance"),
    DemoPersona("finance.uki", "Tom", "Evans", Role.FINANCE, "UKI", "finance"),
]
# The administrator looks after every region.
ADMIN_EXTRA_SCOPES = ["NOR", "UKI"]
# How long the demo people have held their roles (the seeded history needs them in office).
TENURE_DAYS = 3 * 365
# A demo secret, published on purpose: every seeded user signs in with it.
PASSWORD = "tollgate-demo"  # noqa: S105 - the published demo password
PASSWORD_NOTE = f"password for all: {PASSWORD} (a demo secret, published on purpose)"


def scopes_of(persona: DemoPersona) -> list[str]:
    return [persona.scope, *ADMIN_EXTRA_SCOPES] if persona.role == Role.ADMIN else [persona.scope]


def login_table() -> str:
    """The demo logins as printed by `seed_demo` and `make run`."""
    lines = [f"Demo logins, {PASSWORD_NOTE}:"]
    for persona in PERSONAS:
        where = ",".join(scopes_of(persona))
        lines.append(
            f"  {persona.username:<17} {persona.role.label:<17} {where:<12} {persona.does}"
        )
    lines.append(
        f"  and {len(STAFF)} colleagues who staff the other sites and regions, "
        "e.g. sm.rotterdam, rm.nordics, finance.uki"
    )
    return "\n".join(lines)
