"""Money: the shape of every amount field, and the exchange rates to the base currency."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from sites.models import currency_validator

MONEY = {"max_digits": 16, "decimal_places": 2}


class CurrencyRate(models.Model):
    """How many units of `currency` one unit of the base currency buys, from `valid_from` on."""

    currency = models.CharField(max_length=3, validators=[currency_validator])
    units_per_base = models.DecimalField(
        max_digits=18, decimal_places=8, validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    valid_from = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["currency", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "valid_from"], name="one_rate_per_instant")
        ]

    def __str__(self) -> str:
        return f"1 {settings.TOLLGATE_BASE_CURRENCY} = {self.units_per_base} {self.currency}"
