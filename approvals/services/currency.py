"""Exchange rates to the base currency, used to compare amounts in any currency."""

from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.audit.services import audit_record
from sites import policies as site_policies


def currency_rate_add(*, actor, currency: str, units_per_base: Decimal, valid_from=None):
    """Record an exchange rate from `valid_from` on; earlier rates stay for earlier requests."""
    from approvals.models import CurrencyRate

    if not site_policies.may_create_region(actor):
        raise PermissionDenied("Only a superuser maintains exchange rates.")
    with transaction.atomic():
        rate = CurrencyRate(
            currency=currency,
            units_per_base=units_per_base,
            valid_from=valid_from or timezone.now(),
        )
        rate.full_clean()
        rate.save()
        audit_record(
            action="currency_rate.added",
            actor=actor,
            obj=rate,
            after={
                "currency": currency,
                "units_per_base": units_per_base,
                "valid_from": rate.valid_from,
            },
        )
    return rate
