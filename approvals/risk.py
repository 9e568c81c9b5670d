"""Risk signals: deterministic, explainable flags computed when a request is submitted.

They support a decision and never take one: a flag routes a request to more people (policies
may add tiers for it) and keeps it off the fast path, and every flag carries its explanation
and the numbers behind it so that an approver or an auditor can check it by hand. The numbers
are plain JSON values (amounts as decimal strings), so a flag reads the same when it is
computed and when it is read back from the request.

Signals:
* `amount_outlier` — the amount is far from this site's history for the kind and counterparty,
  measured by a robust z-score (median and median absolute deviation, so one past outlier
  does not hide the next);
* `threshold_split` — several requests at the site by the same person, or for the same
  counterparty, within a short window each stay under a policy threshold that together they
  cross;
* `new_counterparty` — a vendor or customer Tollgate has not seen before (or Odoo created
  recently);
* `after_hours` — asked for outside the site's business hours;
* `price_below_history` — a price override far below what this customer has been given before.

Only submitted requests are history, and never earlier revisions of the request itself: a
rejected request raised again is one purchase, not two.

A request pulled from Odoo is judged by what happened in Odoo, not by the sync that brought it:
its moment is when the record was made or asked for approval there (`odoo_asked_at`), its
person the Odoo user who made it (`odoo_author_ref`), never the integration user every pulled
request is raised by, and its counterparty's age counts from the partner's `create_date` in
Odoo. Requests raised in the browser or through the API keep their requester and submission
time.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from statistics import median
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from approvals import routing, sla
from approvals.models import ApprovalRequest, RequestKind, RequestState
from portal.core.formatting import working_hours

OUTLIER_Z = Decimal("3.5")
# 1.4826 × MAD estimates the standard deviation for normal data; 1.2533 × mean absolute
# deviation is the usual stand-in when more than half the history is one value (MAD = 0).
MAD_SCALE = Decimal("1.4826")
MEAN_AD_SCALE = Decimal("1.2533")
# A history of (nearly) one repeated amount has no spread to speak of; without a floor a cent
# more than usual would be infinitely unusual.
MIN_SPREAD_SHARE = Decimal("0.01")
PRICE_DROP_PCT = Decimal("15")
PRICE_HISTORY_MIN = 3
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
    plain = {name: str(v) if isinstance(v, Decimal) else v for name, v in numbers.items()}
    return {"code": code, "explanation": explanation, "numbers": plain}


def _submitted_before(request: ApprovalRequest, at: datetime):
    earlier_revisions = []
    previous = request.revision_of_id
    while previous is not None:
        earlier_revisions.append(previous)
        previous = (
            ApprovalRequest.objects.filter(pk=previous)
            .values_list("revision_of_id", flat=True)
            .first()
        )
    return (
        ApprovalRequest.objects.filter(state__in=_COUNTED, submitted_at__lt=at)
        .exclude(pk__in=[request.pk, *earlier_revisions])
        .exclude(amount_base__isnull=True)
    )


def asked_at(request: ApprovalRequest, at: datetime) -> datetime:
    """The moment a request was asked for: in Odoo for a pulled one, else its submission."""
    asked = request.odoo_asked_at
    return asked if asked is not None and asked <= at else at


def _history(request: ApprovalRequest, at: datetime):
    since = at - timedelta(days=settings.RISK_HISTORY_DAYS)
    return _submitted_before(request, at).filter(submitted_at__gte=since)


def robust_spread(history: list[Decimal]) -> tuple[Decimal, Decimal, str]:
    """The median of `history`, a robust standard deviation around it, and how it was taken."""
    centre = Decimal(median(history))
    deviations = [abs(x - centre) for x in history]
    spread, method = MAD_SCALE * Decimal(median(deviations)), f"{MAD_SCALE} × MAD"
    if spread == 0:
        spread = MEAN_AD_SCALE * sum(deviations) / len(history)
        method = f"{MEAN_AD_SCALE} × mean absolute deviation (MAD is 0)"
    floor = max(MIN_SPREAD_SHARE * abs(centre), routing.CENT)
    if spread < floor:
        spread, method = floor, f"{MIN_SPREAD_SHARE:.0%} of the median (history barely varies)"
    return centre, spread, method


def robust_z(value: Decimal, history: list[Decimal]) -> Decimal:
    """How many robust standard deviations `value` lies from the median of `history`."""
    centre, spread, _ = robust_spread(history)
    return (value - centre) / spread


def amount_outlier(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    past = _history(request, at).filter(site=request.site_id, kind=request.kind)
    if request.counterparty_ref:
        past = past.filter(counterparty_ref=request.counterparty_ref)
    amounts = list(past.values_list("amount_base", flat=True))
    if len(amounts) < settings.RISK_HISTORY_MIN:
        return None
    centre, spread, method = robust_spread(amounts)
    z = (request.amount_base - centre) / spread
    if abs(z) <= OUTLIER_Z:
        return None
    base = settings.TOLLGATE_BASE_CURRENCY
    centre, spread = centre.quantize(routing.CENT), spread.quantize(routing.CENT)
    of = f"{request.get_kind_display().lower()} requests"
    if request.counterparty_ref:
        of += f" with {request.counterparty or request.counterparty_ref}"
    return _flag(
        "amount_outlier",
        f"{request.amount_base} {base} is far from the usual {centre} {base} for "
        f"{of} at {request.site.code}: robust z-score {z:.2f} = ({request.amount_base} - "
        f"{centre}) / {spread}, the spread being {method} over {len(amounts)} past requests; "
        f"flagged beyond ±{OUTLIER_Z}.",
        amount=request.amount_base,
        median=centre,
        spread=spread,
        spread_method=method,
        robust_z=z.quantize(Decimal("0.01")),
        history=len(amounts),
    )


def threshold_split(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    # The thresholds are the site's policy's, so only the site's own requests add up to them.
    # A pulled request's window is around when it was asked for in Odoo: one sync brings in a
    # week of records at once, and they were not asked for together.
    window = timedelta(hours=settings.RISK_SPLIT_WINDOW_HOURS)
    moment = asked_at(request, at)
    recent = (
        _history(request, at)
        # As asked_at: never later than the request reached Tollgate (an Odoo clock ahead of
        # ours must not move a record out of the window).
        .annotate(asked=Least(Coalesce(F("odoo_asked_at"), F("submitted_at")), F("submitted_at")))
        .filter(
            site=request.site_id, kind=request.kind, asked__gte=moment - window, asked__lte=moment
        )
        .order_by("asked", "pk")
    )
    if request.odoo_author_ref:
        person = ("odoo_author", recent.filter(odoo_author_ref=request.odoo_author_ref))
    else:
        person = ("requester", recent.filter(requester=request.requester_id))
    groups = [person]
    if request.counterparty_ref:
        groups.append(("counterparty", recent.filter(counterparty_ref=request.counterparty_ref)))
    for threshold in reversed(routing.thresholds(version, request.kind)):
        if request.amount_base >= threshold:
            continue
        for by, group in groups:
            under = list(group.filter(amount_base__lt=threshold).only("revision", "amount_base"))
            total = request.amount_base + sum(past.amount_base for past in under)
            if under and total >= threshold:
                return _split_flag(request, by, threshold, total, under, window)
    return None


def _split_flag(request, by, threshold, total, under, window) -> dict:
    base = settings.TOLLGATE_BASE_CURRENCY
    if by == "requester":
        who = f"the same requester ({request.requester.get_full_name() or request.requester})"
    elif by == "odoo_author":
        who = f"the same Odoo user ({request.odoo_author or request.odoo_author_ref})"
    else:
        who = f"the same counterparty ({request.counterparty or request.counterparty_ref})"
    refs = [past.reference for past in under]
    hours = window.total_seconds() / 3600
    return _flag(
        "threshold_split",
        f"{len(under) + 1} requests at {request.site.code} by {who} within {hours:.0f} h "
        f"total {total} {base}, crossing the {threshold} {base} threshold that each stays "
        f"under ({', '.join(refs)} and this one of {request.amount_base} {base}).",
        threshold=threshold,
        total=total,
        count=len(under) + 1,
        related=refs,
        grouped_by=by,
        window_hours=settings.RISK_SPLIT_WINDOW_HOURS,
    )


def _created_in_odoo(request: ApprovalRequest) -> datetime | None:
    # Odoo's creation date is advisory: an unreadable one falls back to Tollgate's own history
    # rather than refusing the submission.
    since = request.details.get("counterparty_since")
    if not since:
        return None
    try:
        created = datetime.fromisoformat(str(since))
    except ValueError:
        return None
    return created.replace(tzinfo=UTC) if timezone.is_naive(created) else created


def new_counterparty(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    if not request.counterparty_ref:
        return None
    created = _created_in_odoo(request)
    if created is not None:
        age = max((asked_at(request, at) - created).days, 0)
        if age >= NEW_COUNTERPARTY_DAYS:
            return None
        reason = (
            f"was created in Odoo {age} days ago (on {created:%Y-%m-%d}; "
            f"new for {NEW_COUNTERPARTY_DAYS} days)"
        )
    else:
        seen = _submitted_before(request, at).filter(counterparty_ref=request.counterparty_ref)
        if seen.exists():
            return None
        reason = "has no earlier submitted request in Tollgate"
        age = None
    return _flag(
        "new_counterparty",
        f"{request.counterparty or request.counterparty_ref} {reason}.",
        counterparty=request.counterparty_ref,
        age_days=age,
    )


def after_hours(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    site = request.site
    moment = asked_at(request, at)
    if sla.is_business_time(moment, site):
        return None
    local = timezone.localtime(moment, ZoneInfo(site.time_zone)).replace(microsecond=0)
    in_odoo = request.odoo_asked_at is not None and moment == request.odoo_asked_at
    what = "Asked for in Odoo" if in_odoo else "Submitted"
    # The explanation is stored as an English sentence, so the day names are English too.
    hours = working_hours(site.business_days, site.opens_at, site.closes_at, "en_GB")
    return _flag(
        "after_hours",
        f"{what} on {local:%a} {local.day} {local:%b %Y at %H:%M} {local.tzname()}, outside "
        f"{site.code}'s business hours ({hours}).",
        local_time=local.isoformat(),
        time_zone=site.time_zone,
        source="odoo" if in_odoo else "submission",
    )


def _finite(value) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def price_below_history(request: ApprovalRequest, *, version, at: datetime) -> dict | None:
    product = request.details.get("product")
    price = _finite(request.details.get("unit_price"))
    kind_fits = request.kind == RequestKind.PRICE_OVERRIDE
    if not kind_fits or not product or not request.counterparty_ref or price is None:
        return None
    past = _history(request, at).filter(
        kind=RequestKind.PRICE_OVERRIDE,
        counterparty_ref=request.counterparty_ref,
        details__product=product,
    )
    prices = [
        p
        for p in (_finite(d.get("unit_price")) for d in past.values_list("details", flat=True))
        if p is not None
    ]
    if len(prices) < PRICE_HISTORY_MIN:
        return None
    usual = Decimal(median(prices))
    if usual <= 0:
        return None
    drop = (usual - price) * 100 / usual
    if drop < PRICE_DROP_PCT:
        return None
    usual, drop = usual.quantize(routing.CENT), drop.quantize(Decimal("0.1"))
    return _flag(
        "price_below_history",
        f"Unit price {price} for {product} is {drop} % below the median {usual} this customer "
        f"got over {len(prices)} past price overrides (flagged from {PRICE_DROP_PCT} %).",
        unit_price=price,
        median=usual,
        drop_pct=drop,
        history=len(prices),
    )
