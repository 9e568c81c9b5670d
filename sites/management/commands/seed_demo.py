"""Create the demo company, its sites and one user per persona; safe to run again."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sites import demo, services
from sites.models import Membership, Region, Site


class Command(BaseCommand):
    help = "Seed the demo company (3 regions, 9 sites, one user per persona). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off. The demo users share a published password.",
        )

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with the published demo password; it runs only with "
                "DEBUG on. Pass --force to seed a non-debug installation anyway."
            )
        with transaction.atomic():
            regions = self._regions()
            sites = self._sites(regions)
            self._personas(regions, sites)
        self._print_logins()

    def _regions(self) -> dict[str, Region]:
        regions = {}
        for code, (name, _company) in demo.REGIONS.items():
            region = Region.objects.filter(code=code).first()
            regions[code] = region or services.region_create(code=code, name=name)
        return regions

    def _sites(self, regions: dict[str, Region]) -> dict[str, Site]:
        sites = {}
        for spec in demo.SITES:
            site = Site.objects.filter(code=spec.code).first()
            sites[spec.code] = site or services.site_create(
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
        User = get_user_model()
        for persona in demo.PERSONAS:
            user, _created = User.objects.get_or_create(username=persona.username)
            user.first_name = persona.first_name
            user.last_name = persona.last_name
            user.email = f"{persona.username}@demo.tollgate.invalid"
            user.is_active = True
            user.is_staff = user.is_superuser = persona.superuser
            user.set_password(demo.PASSWORD)
            user.save()
            for scope in demo.scopes_of(persona):
                self._ensure_membership(user, persona.role, scope, regions, sites)

    def _ensure_membership(self, user, role, scope, regions, sites) -> None:
        site, region = sites.get(scope), regions.get(scope)
        now = timezone.now()
        in_force = Membership.objects.filter(
            user=user, role=role, site=site, region=region, valid_from__lte=now
        ).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        if not in_force.exists():
            services.membership_grant(
                actor=None, user=user, role=role, site=site, region=region, note="demo seed"
            )

    def _print_logins(self) -> None:
        self.stdout.write(demo.login_table())
