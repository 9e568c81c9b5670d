import datetime
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import UserObjectPermissionBase

from sites.roles import SITE_PERMISSIONS, Role

code_validator = RegexValidator(
    r"^[A-Z0-9][A-Z0-9-]*$", "Use capital letters, digits and hyphens, e.g. AMS or BNL."
)
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code, e.g. EUR.")
business_days_validator = RegexValidator(
    r"^(?!.*(.).*\1)[1-7]{1,7}$", "List each working ISO weekday once, 1 = Monday: e.g. 12345."
)


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name such as Europe/Amsterdam.")


class Region(models.Model):
    code = models.CharField(max_length=8, unique=True, validators=[code_validator])
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Site(models.Model):
    """A warehouse or branch; every permission in Tollgate is granted on sites."""

    # Odoo's stock.warehouse.code allows at most five characters; the two stay equal.
    code = models.CharField(max_length=5, unique=True, validators=[code_validator])
    name = models.CharField(max_length=100)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="sites")
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    odoo_company_id = models.PositiveIntegerField(help_text="res.company id in Odoo.")
    odoo_warehouse_id = models.PositiveIntegerField(
        unique=True, null=True, blank=True, help_text="stock.warehouse id in Odoo."
    )
    active = models.BooleanField(
        default=True, help_text="A closed site keeps its history but takes no new work."
    )
    # Business hours, in the site's own time zone: SLAs measured in business hours count only
    # these, and risk signals call a submission outside them "after hours".
    opens_at = models.TimeField(default=datetime.time(8, 0))
    closes_at = models.TimeField(default=datetime.time(18, 0))
    business_days = models.CharField(
        max_length=7,
        default="12345",
        validators=[business_days_validator],
        help_text="ISO weekdays the site works, 1 = Monday: e.g. 12345.",
    )

    class Meta:
        ordering = ["code"]
        permissions = SITE_PERMISSIONS

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        both = self.opens_at is not None and self.closes_at is not None
        if both and self.opens_at >= self.closes_at:
            raise ValidationError({"closes_at": "A site must close after it opens."})


class Membership(models.Model):
    """A role held by a user at one site or at every site of one region, for a period."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="memberships"
    )
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, null=True, blank=True, related_name="memberships"
    )
    valid_from = models.DateTimeField(default=timezone.now)
    valid_to = models.DateTimeField(
        null=True, blank=True, help_text="The role grants nothing from this moment on."
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    granted_at = models.DateTimeField(default=timezone.now, editable=False)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["user_id", "role", "id"]
        constraints = [
            models.CheckConstraint(
                name="membership_scope_is_one_site_or_one_region",
                condition=Q(site__isnull=False, region__isnull=True)
                | Q(site__isnull=True, region__isnull=False),
            ),
            models.CheckConstraint(
                # An empty period (end == start) is a membership cancelled before it began.
                name="membership_does_not_end_before_it_starts",
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.scope_label}"

    @property
    def display_time_zone(self) -> str:
        """The zone its dates are shown in: the site's own, or UTC for a region."""
        return self.site.time_zone if self.site_id else "UTC"

    @property
    def scope_label(self) -> str:
        return f"site {self.site.code}" if self.site_id else f"region {self.region.code}"

    def clean(self) -> None:
        if bool(self.site_id) == bool(self.region_id):
            raise ValidationError("A membership is held at exactly one site or one region.")
        if self.valid_to is not None and self.valid_from and self.valid_to < self.valid_from:
            raise ValidationError({"valid_to": "The end must not come before the start."})


class MembershipChange(models.Model):
    """Who granted, changed or ended a membership, and when; the audit ledger carries these."""

    class Action(models.TextChoices):
        GRANTED = "granted", "Granted"
        CHANGED = "changed", "Changed"
        ENDED = "ended", "Ended"

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="changes")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    before = models.JSONField(null=True)
    after = models.JSONField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.membership} at {self.at:%Y-%m-%d %H:%M}"


class SiteUserObjectPermission(UserObjectPermissionBase):
    """django-guardian direct-FK grant: `user` holds the role `permission` at `content_object`.

    Each row comes from one membership and is in force only while that membership is; rows are
    written by sites.services and read by sites.policies, which checks the membership's dates.
    """

    content_object = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="user_grants")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="grants")

    class Meta(UserObjectPermissionBase.Meta):
        # Two memberships may give the same role at the same site (say one on the site and one
        # on its region); each keeps its own row so that ending one leaves the other in force.
        unique_together = [("membership", "content_object")]
        indexes = [
            models.Index(fields=["user", "permission", "content_object"], name="site_grant_lookup"),
            # Everyone's roles at one site (who may decide a tier, who is pending on it): the
            # site's rows of each role, without intersecting a role's rows across all sites.
            models.Index(fields=["content_object", "permission"], name="site_grant_by_site"),
        ]
