"""How each person wants to hear from Tollgate."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class NotificationPreference(models.Model):
    """How one person wants to hear from Tollgate; without a row, everything comes at once.

    Escalations are always sent: an overdue decision must reach someone whatever they chose.
    """

    class NewSteps(models.TextChoices):
        IMMEDIATE = "immediate", "An e-mail for each new decision"
        DIGEST = "digest", "One daily digest of what waits for me"
        OFF = "off", "No e-mail; I check my inbox"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    new_steps = models.CharField(
        max_length=16, choices=NewSteps.choices, default=NewSteps.IMMEDIATE
    )
    reminders = models.BooleanField(
        default=True, help_text="Remind me when a decision waiting for me nears its due time."
    )
    decisions_on_my_requests = models.BooleanField(
        default=True, help_text="Tell me when a request I raised is decided."
    )
    last_digest_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"notification preferences of {self.user}"
