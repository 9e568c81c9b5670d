"""Risk signals: deterministic, explainable flags computed when a request is submitted.

They support a decision and never take one: a flag routes a request to more people (policies
may add tiers for it) and keeps it off the fast path, and every flag carries its explanation
and the numbers behind it so that an approver or an auditor can check it by hand.

Signals:
* `amount_outlier` — the amount is far from this site's history for the kind and counterparty,
  measured by a robust z-score (median and median absolute deviation, so one past outlier
  does not hide the next);
* `threshold_split` — several requests by the same requester, or for the same counterparty,
  within a short window each stay under a policy threshold that together they cross;
* `new_counterparty` — a vendor or customer Tollgate has not seen before (or Odoo created
  recently);
* `after_hours` — submitted outside the site's business hours;
* `price_below_history` — a price override far below what this customer has been given before.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import median
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from approvals import routing, sla
from approvals.models import ApprovalRequest, RequestKind, RequestState

OUTLIER_Z = Decimal("3.5")
# 1.4826 × MAD estimates the standard deviation for normal data; 1.2533 × mean absolute
# deviation is the usual stand-in when more than half the history is one value (MAD = 0).
MAD_SCALE = Decimal("1.4826")
MEAN_AD_SCALE = Decimal("1.2533")
PRICE_DROP_PCT = Decimal("15")
NEW_COUNTERPARTY_DAYS = 90
_COUNTED = [
    RequestState.SUBMITTED,
    RequestState.IN_REVIEW,
    RequestState.APPROVED,
    RequestState.REJECTED,
    RequestState.EXPIRED,
    RequestState.APPLIED,
    RequestState.APPLY_FAILED,
]


def assess(request: ApprovalRequest, *, version, at: datetime) -> list[dict]:
    """Every flag that applies to `request` if submitted at `at`, each explained."""
    checks = (amount_outlier, threshold_split, new_counterparty, after_hours, price_below_history)
    return [flag for check in checks if (flag := check(request, version=version, at=at))]


def _flag(code: str, explanation: str, **numbers) -> dict:
    return {"code": code, "explanation": explanation, "numbers": numbers}


def _history(request: ApprovalRequest, at: datetime):
    since = at - timedelta(days=settings.RISK_HISTORY_DAYS)
    return (
        ApprovalRequest.objects.filter(
            state__in=_COUNTED, submitted_at__gte=since, submitted_at__lt=at
        )
        .exclude(pk=request.pk)
        .exclude(amount_base__isnull=True)
    )


def robust_z(value: Decimal, history: list[Decimal]) -> Decimal | None:
    """How many robust standard deviations `value` lies from the median of `history`."""
    centre = Decimal(median(history))
    spread = MAD_SCALE * Decimal(median(abs(x - centre) for x in history))
    if spread == 0:
        spread = MEAN_AD_SCALE * sum(abs(x - centre) for x in history) / len(history)
    if spread == 0:
        return None if value == centre else Decimal("Infinity") * (1 if value > centre else -1)
    return (value - centre) / spread


def amount_outlier(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    past = _history(request, at).filter(site=request.site_id, kind=request.kind)
    if request.counterparty_ref:
        past = past.filter(counterparty_ref=request.counterparty_ref)
    amounts = [a for a in past.values_list("amount_base", flat=True)]
    if len(amounts) < settings.RISK_HISTORY_MIN:
        return None
    z = robust_z(request.amount_base, amounts)
    if z is None or abs(z) <= OUTLIER_Z:
        return None
    centre = Decimal(median(amounts))
    base = settings.TOLLGATE_BASE_CURRENCY
    z_text = "∞" if z.is_infinite() else f"{z:.1f}"
    return _flag(
        "amount_outlier",
        f"{request.amount_base} {base} is far from the usual {centre:.2f} {base} for this "
        f"kind{' and counterparty' if request.counterparty_ref else ''} at {request.site.code} "
        f"(robust z-score {z_text} over {len(amounts)} past requests; flagged beyond "
        f"{OUTLIER_Z}).",
        amount=request.amount_base,
        median=centre.quantize(routing.CENT),
        robust_z=None if z.is_infinite() else z.quantize(Decimal("0.01")),
        history=len(amounts),
    )


def threshold_split(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    window = timedelta(hours=settings.RISK_SPLIT_WINDOW_HOURS)
    recent = _history(request, at).filter(kind=request.kind, submitted_at__gte=at - window)
    groups = [("requester", recent.filter(requester=request.requester_id))]
    if request.counterparty_ref:
        groups.append(("counterparty", recent.filter(counterparty_ref=request.counterparty_ref)))
    for threshold in reversed(routing.thresholds(version, request.kind)):
        if request.amount_base >= threshold:
            continue
        for by, group in groups:
            under = list(group.filter(amount_base__lt=threshold).values_list("pk", "amount_base"))
            total = request.amount_base + sum(amount for _, amount in under)
            if under and total >= threshold:
                return _split_flag(request, by, threshold, total, under, window)
    return None


def _split_flag(request, by, threshold, total, under, window) -> dict:
    base = settings.TOLLGATE_BASE_CURRENCY
    who = (
        "the same requester"
        if by == "requester"
        else f"the same counterparty ({request.counterparty})"
    )
    refs = [f"AR-{pk:06d}" for pk, _ in under]
    return _flag(
        "threshold_split",
        f"{len(under) + 1} requests by {who} within {window.total_seconds() / 3600:.0f} h "
        f"total {total} {base}, crossing the {threshold} {base} threshold that each stays "
        f"under ({', '.join(refs)} and this one).",
        threshold=threshold,
        total=total,
        count=len(under) + 1,
        related=refs,
        grouped_by=by,
    )


def new_counterparty(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    if not request.counterparty_ref:
        return None
    since = request.details.get("counterparty_since")
    if since:
        created = datetime.fromisoformat(str(since))
        if timezone.is_naive(created):
            created = created.replace(tzinfo=UTC)
        age = (at - created).days
        if age >= NEW_COUNTERPARTY_DAYS:
            return None
        reason = f"was created in Odoo {age} days ago"
    else:
        seen = _history(request, at).filter(counterparty_ref=request.counterparty_ref)
        if seen.exists():
            return None
        reason = "has no earlier request in Tollgate"
        age = None
    return _flag(
        "new_counterparty",
        f"{request.counterparty or request.counterparty_ref} {reason}.",
        counterparty=request.counterparty_ref,
        age_days=age,
    )


def after_hours(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    site = request.site
    if sla.is_business_time(at, site):
        return None
    local = timezone.localtime(at, ZoneInfo(site.time_zone))
    return _flag(
        "after_hours",
        f"Submitted at {local:%a %H:%M} {site.time_zone}, outside {site.code}'s business hours "
        f"({site.opens_at:%H:%M}–{site.closes_at:%H:%M}, days {site.business_days}).",
        local_time=local.isoformat(),
    )


def price_below_history(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    product = request.details.get("product")
    if request.kind != RequestKind.PRICE_OVERRIDE or not product or not request.counterparty_ref:
        return None
    past = _history(request, at).filter(
        kind=RequestKind.PRICE_OVERRIDE, counterparty_ref=request.counterparty_ref
    )
    prices = [
        Decimal(str(details["unit_price"]))
        for details in past.values_list("details", flat=True)
        if details.get("product") == product and details.get("unit_price") is not None
    ]
    if len(prices) < 3:
        return None
    usual = Decimal(median(prices))
    price = Decimal(str(request.details["unit_price"]))
    drop = (usual - price) * 100 / usual if usual else Decimal(0)
    if drop < PRICE_DROP_PCT:
        return None
    return _flag(
        "price_below_history",
        f"Unit price {price} is {drop:.1f} % below the {usual:.2f} this customer usually got "
        f"for {product} ({len(prices)} past overrides; flagged from {PRICE_DROP_PCT} %).",
        unit_price=price,
        median=usual.quantize(routing.CENT),
        drop_pct=drop.quantize(Decimal("0.1")),
        history=len(prices),
    )
