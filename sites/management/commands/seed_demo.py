"""Create the demo company, its sites, one user per persona and ninety days of its history;
safe to run again."""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from approvals import demo as approvals_demo
from approvals import demo_history, notifications
from exceptions import demo as exceptions_demo
from exceptions import suggestions
from portal.integrations.mail import demo as mail_demo
from portal.integrations.odoo import demo as odoo_demo
from portal.webhooks import demo as webhooks_demo
from sites import demo, services
from sites.models import Membership, Region, Site


class Command(BaseCommand):
    help = (
        "Seed the demo company (3 regions, 9 sites, one user per persona, the approval policy)."
        " Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off. The demo users share a published password.",
        )
        parser.add_argument(
            "--without-history",
            dest="history",
            action="store_false",
            help="Only the company, its people and policies: no requests or cases.",
        )

    def handle(self, *args, force: bool = False, history: bool = True, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with the published demo password; it runs only with "
                "DEBUG on. Pass --force to seed a non-debug installation anyway."
            )
        with transaction.atomic():
            regions = self._regions()
            sites = self._sites(regions)
            self._personas(regions, sites)
            approvals_demo.seed()
            exceptions_demo.seed()
            webhooks_demo.seed()
            mail_demo.seed()
        if history:
            started = time.monotonic()
            # The history is the past: nobody is mailed about decisions made weeks ago.
            with transaction.atomic(), notifications.silenced():
                requests = demo_history.seed()
                cases = exceptions_demo.seed_history()
                odoo_demo.seed_history()
            if cases:
                # The resolution suggestions learn from those cases, as the nightly job would.
                suggestions.train_all()
            if requests.raised or cases:
                self.stdout.write(
                    f"Ninety days of history: {requests.raised} requests "
                    f"({requests.fast_path} on the fast path) and {cases} exception cases, "
                    f"in {time.monotonic() - started:.0f} s."
                )
        self._print_logins()

    def _regions(self) -> dict[str, Region]:
        regions = {}
        for code, (name, _company) in demo.REGIONS.items():
            region = Region.objects.filter(code=code).first()
            regions[code] = region or services.region_create(actor=None, code=code, name=name)
        return regions

    def _sites(self, regions: dict[str, Region]) -> dict[str, Site]:
        sites = {}
        for spec in demo.SITES:
            site = Site.objects.filter(code=spec.code).first()
            sites[spec.code] = site or services.site_create(
                actor=None,
                code=spec.code,
                name=spec.name,
                region=regions[spec.region],
                time_zone=spec.time_zone,
                currency=spec.currency,
                odoo_company_id=demo.REGIONS[spec.region][1],
                odoo_warehouse_id=spec.odoo_warehouse_id,
            )
        return sites

    def _personas(self, regions: dict[str, Region], sites: dict[str, Site]) -> None:
        # Only what is missing is created: a demo user an administrator has changed, or a
        # membership that was ended, stays as it was left.
        User = get_user_model()
        for persona in [*demo.PERSONAS, *demo.STAFF]:
            user = User.objects.filter(username=persona.username).first()
            if user is None:
                user = User.objects.create_user(
                    username=persona.username,
                    password=demo.PASSWORD,
                    first_name=persona.first_name,
                    last_name=persona.last_name,
                    email=f"{persona.username}@demo.tollgate.invalid",
                    is_staff=persona.superuser,
                    is_superuser=persona.superuser,
                )
            for scope in demo.scopes_of(persona):
                site, region = sites.get(scope), regions.get(scope)
                if not Membership.objects.filter(
                    user=user, role=persona.role, site=site, region=region
                ).exists():
                    services.membership_grant(
                        actor=None,
                        user=user,
                        role=persona.role,
                        site=site,
                        region=region,
                        # The demo people have held their roles for years: the history
                        # seeded below is decided by them.
                        valid_from=timezone.now() - timedelta(days=demo.TENURE_DAYS),
                        note="demo seed",
                    )

    def _print_logins(self) -> None:
        self.stdout.write(demo.login_table())
