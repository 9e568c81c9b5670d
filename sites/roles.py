"""The roles a person can hold at a site or a region, and what each one means."""

from django.db import models


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    SITE_MANAGER = "site_manager", "Site manager"
    REGIONAL_MANAGER = "regional_manager", "Regional manager"
    FINANCE = "finance", "Finance"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"


MEANINGS: dict[Role, str] = {
    Role.REQUESTER: (
        "Raises and tracks requests for the site (buyers, warehouse leads); withdraws and "
        "resubmits their own requests. Decides nothing."
    ),
    Role.SITE_MANAGER: (
        "Decides the first approval tiers of the site's requests and works its warehouse "
        "exception queues."
    ),
    Role.REGIONAL_MANAGER: (
        "Decides the higher approval tiers at every site where the role is held (usually granted "
        "on a whole region) and may bulk-approve routine items."
    ),
    Role.FINANCE: (
        "Decides the tiers above finance thresholds and works the invoice, credit and price "
        "exception queues."
    ),
    Role.AUDITOR: (
        "Reads everything at the site, including the audit ledger, and exports and verifies "
        "decision trails. Changes nothing."
    ),
    Role.ADMIN: (
        "Administers the site: memberships, policies, the Odoo connection and webhook secrets. "
        "Decides no requests."
    ),
}


DECIDING_ROLES: frozenset[Role] = frozenset(
    {Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE}
)
"""The only roles an approval tier may name, and the only ones that decide anywhere.

Requesters raise, auditors read and administrators configure (see MEANINGS): a tier naming one
of them would wait for a decision its holders are never meant to take. Policy lint refuses such
a tier, and the DECIDE capability is granted by exactly these roles.
"""


def permission_codename(role: str) -> str:
    """The django-guardian object permission on Site that stands for holding `role` there."""
    return f"role_{role}"


def role_of_codename(codename: str) -> Role | None:
    prefix = "role_"
    if not codename.startswith(prefix):
        return None
    try:
        return Role(codename.removeprefix(prefix))
    except ValueError:
        return None


SITE_PERMISSIONS = [
    (permission_codename(role), f"Holds the {role.label.lower()} role at the site") for role in Role
]
