"""The auditor's pages: the ledger searched, decision trails, exports and the chain's health.

Everything here is read through `portal.audit.selectors`, so an auditor finds only events in
their audit scope; someone who may audit no site gets 404 for the whole area.
"""

import json
import re
import tempfile
import zipfile
from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST, require_safe

from portal.audit import signing, tasks, verify_export
from portal.audit.export import FORMATS as EXPORT_FORMATS
from portal.audit.export import Subject, audit_export_files
from portal.audit.models import NEWEST_FIRST, AuditCheckpoint, AuditEvent
from portal.audit.selectors import (
    CASE_TYPE,
    REQUEST_TYPE,
    ExportFilters,
    events_visible_to,
    regions_audited_whole,
    trail_for,
    trail_for_export,
)
from portal.audit.sentences import EVENT_SENTENCES, event_words
from portal.audit.services import VERIFIED
from portal.core.formatting import count, day, zone_of
from sites.policies import Capability, sites_where

# Short names for the URL; a full "app_label.model" names any other object.
OBJECT_TYPES = {"request": REQUEST_TYPE, "case": CASE_TYPE}
SHORT_NAMES = {label: short for short, label in OBJECT_TYPES.items()}
KIND_NAMES = {REQUEST_TYPE: "Approval request", CASE_TYPE: "Exception case"}
PAGE_SIZE = 25
VERIFY_LOCK = "tollgate:audit-verify-running"
VERIFY_SHOWN_RUNNING_SECONDS = 600
MAX_ROW_ID = 2**63 - 1


@login_required
def trail(request, object_type: str, object_id: str):
    """The timeline of one object; 404 when nothing about it is in the viewer's audit scope."""
    label = OBJECT_TYPES.get(object_type, object_type)
    if "\x00" in label + object_id or (label in KIND_NAMES and not _is_row_id(object_id)):
        raise Http404("No such trail.")
    try:
        events = trail_for(request.user, label, object_id)
    except AuditEvent.DoesNotExist:
        raise Http404("No such trail.") from None
    subject = next(event for event in reversed(events) if event.object_type == label)
    return render(
        request,
        "audit/trail.html",
        {
            "events": events,
            "zone": shared_zone(events),
            "subject": subject,
            "record_kind": KIND_NAMES.get(label, "Record"),
            "export_kind": object_type if object_type in OBJECT_TYPES else None,
            "sealed": [event.sequence for event in events if event.sequence is not None],
            "pending": sum(1 for event in events if event.sequence is None),
        },
    )


def _is_row_id(text: str) -> bool:
    """Whether `text` can name a request or case row: ASCII digits within a 64-bit key.

    Anything else (a huge number, "²", a NUL) names nothing, and must not reach the database.
    """
    return text.isascii() and text.isdigit() and int(text) <= MAX_ROW_ID


# --- forms ------------------------------------------------------------------------------------


# The families an auditor may search as a whole: "request." matches every request event.
ACTION_FAMILIES = {
    "request": "Anything about a request",
    "decision": "Any decision",
    "case": "Anything about an exception case",
    "delegation": "Any delegation",
    "policy": "Anything about a policy",
    "auth": "Any sign-in or sign-out",
    "audit": "Anything about the ledger itself",
}


def action_choices() -> list:
    """The actions an auditor may filter by, as words; the recorded action is the value."""
    families = [(f"{family}.", words) for family, words in ACTION_FAMILIES.items()]
    single = sorted(((action, event_words(action)) for action in EVENT_SENTENCES), key=_second)
    return [("", "Any action"), ("Groups", families), ("One action", single)]


def _second(pair: tuple) -> str:
    return pair[1]


class _Dates(forms.Form):
    date_from = forms.DateField(
        required=False,
        label="From (UTC day)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        required=False,
        label="To (UTC day, included)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            raise ValidationError("The end date must not come before the start date.")
        return data


class SearchForm(_Dates):
    """What an auditor searches the ledger by; every field narrows."""

    field_order = ["q", "actor", "action", "site", "date_from", "date_to"]

    q = forms.CharField(
        required=False, max_length=200, label="Object", help_text="Reference or id, e.g. AR-000042"
    )
    actor = forms.CharField(
        required=False, max_length=150, label="Who acted", help_text="Their username, e.g. finance"
    )
    action = forms.ChoiceField(required=False, label="What happened", choices=())
    site = forms.ChoiceField(required=False, label="Site")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, site_codes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", "Any site"), *((code, code) for code in site_codes)]
        self.fields["action"].choices = action_choices()


class ExportForm(_Dates):
    """An export's format and filters, as `manage.py export_audit` takes them."""

    field_order = ["sites", "region", "kind", "actor", "date_from", "date_to"]

    sites = forms.MultipleChoiceField(required=False, label="Sites (none: all in your scope)")
    region = forms.ChoiceField(required=False, label="Region")
    kind = forms.ChoiceField(required=False, label="What happened", choices=())
    actor = forms.CharField(
        required=False, max_length=150, label="Who acted", help_text="Their username, e.g. finance"
    )

    def __init__(self, *args, site_codes: list[str], region_codes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sites"].choices = [(code, code) for code in site_codes]
        self.fields["region"].choices = [("", "Any"), *((code, code) for code in region_codes)]
        self.fields["kind"].choices = action_choices()

    def filters(self) -> ExportFilters:
        data = self.cleaned_data
        return ExportFilters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            sites=tuple(sorted(data["sites"])),
            region=data["region"],
            kind=data["kind"].strip(),
            actor=data["actor"].strip(),
        )


# --- the auditor's area -----------------------------------------------------------------------


def _audited_site_codes(user) -> list[str]:
    codes = list(
        sites_where(user, Capability.AUDIT).order_by("code").values_list("code", flat=True)
    )
    if not codes:
        # Someone who may audit nothing finds no auditor area at all.
        raise Http404("No such page.")
    return codes


def _search(user, form: SearchForm):
    """The page of events matching the form, newest first, and the cursor of the next page."""
    if form.is_bound and not form.is_valid():
        return [], None
    data = form.cleaned_data if form.is_bound else {}
    events = events_visible_to(user)
    if data.get("q"):
        text = data["q"].strip()
        events = events.filter(Q(object_reference__icontains=text) | Q(object_id=text))
    if data.get("actor"):
        events = events.filter(actor_label=data["actor"].strip())
    if data.get("action"):
        action = data["action"].strip()
        family = action.rstrip(".")
        events = events.filter(Q(action=action) | Q(action__startswith=f"{family}."))
    if data.get("site"):
        events = events.filter(site__code=data["site"])
    if data.get("date_from"):
        events = events.filter(at__gte=datetime.combine(data["date_from"], time.min, tzinfo=UTC))
    if data.get("date_to"):
        end = datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=UTC)
        events = events.filter(at__lt=end)
    if data.get("before"):
        events = events.filter(sequence__lt=data["before"])
    page = list(
        events.select_related("site", "actor", "on_behalf_of").order_by(*NEWEST_FIRST)[
            : PAGE_SIZE + 1
        ]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    for event in page:
        event.trail_type = SHORT_NAMES.get(event.object_type)
    # Events pending their seal come first and carry no number to page on; they are few.
    return page, (page[-1].sequence if more and page[-1].sequence else None)


def shared_zone(events) -> str | None:
    """A time zone every event's site keeps the same clock as (Amsterdam and Brussels alike),
    to name once above a table; None if they differ (each time then names its own zone)."""
    now = timezone.now()
    clocks = {}
    for event in events:
        name = event.site.time_zone if event.site else "UTC"
        local = now.astimezone(zone_of(name))
        clocks.setdefault((local.tzname(), local.utcoffset()), name)
    return next(iter(clocks.values())) if len(clocks) == 1 else None


def _last_verification():
    return AuditEvent.objects.filter(action=VERIFIED).order_by("-sequence").first()


@login_required
def home(request):
    """Search the ledger, export it, and see whether the chain is intact."""
    site_codes = _audited_site_codes(request.user)
    form = SearchForm(request.GET or None, site_codes=site_codes)
    query = request.GET.copy()
    query.pop("before", None)
    export_form = ExportForm(
        site_codes=site_codes, region_codes=regions_audited_whole(request.user)
    )
    return render(
        request,
        "audit/home.html",
        _area(request.user, form, export_form, query=query.urlencode()),
    )


def _area(user, form: SearchForm, export_form: ExportForm, *, query: str = "") -> dict:
    """What the auditor's page shows besides its forms: one query per panel."""
    events, next_before = _search(user, form)
    return {
        "form": form,
        "events": events,
        "zone": shared_zone(events),
        "next_before": next_before,
        "query": query,
        "export_form": export_form,
        "verification": _verification_state(),
        "signing_key": _signing_key_or_problem(),
        "checkpoint": AuditCheckpoint.objects.order_by("-sequence", "-at").first(),
        "checkpoint_every": _duration(settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]),
        "recent_exports": _recent_exports(user),
    }


def _duration(entry: dict) -> str:
    seconds = int(entry["schedule"])
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            return count(seconds // size, unit) if seconds != size else unit
    return count(seconds, "second")


def _recent_exports(user) -> list[dict]:
    """The person's last five exports, as the table of recent exports reads them."""
    recorded = AuditEvent.objects.filter(action="audit.exported", actor=user.pk)
    return [
        {
            "at": event.at,
            "what": _export_described(event.after or {}),
            "rows": (event.after or {}).get("row_count") or 0,
            "first": (event.after or {}).get("first_sequence"),
            "last": (event.after or {}).get("last_sequence"),
            "sha256": (event.after or {}).get("data_sha256", ""),
        }
        for event in recorded.order_by("-sequence")[:5]
    ]


def _export_described(after: dict) -> str:
    subject = after.get("subject")
    if subject:
        return f"Trail of {subject.get('reference')}"
    filters = after.get("filters") or {}
    parts = []
    if filters.get("sites"):
        parts.append(f"sites {', '.join(filters['sites'])}")
    if filters.get("region"):
        parts.append(f"region {filters['region']}")
    if filters.get("kind"):
        parts.append(f"actions {filters['kind']}")
    if filters.get("actor"):
        parts.append(f"by {filters['actor']}")
    if filters.get("date_from") or filters.get("date_to"):
        start, end = filters.get("date_from"), filters.get("date_to")
        start = day(date.fromisoformat(start)) if start else "the start"
        end = day(date.fromisoformat(end)) if end else "today"
        parts.append(f"from {start} to {end}")
    return "Events of " + "; ".join(parts) if parts else "Every event you may audit"


@login_required
@require_POST
def export(request):
    """Export the filtered set as the auditor's package (one zip file, see `_package`)."""
    site_codes = _audited_site_codes(request.user)
    form = ExportForm(
        request.POST, site_codes=site_codes, region_codes=regions_audited_whole(request.user)
    )
    if not form.is_valid():
        return _home_with_errors(request, form, site_codes)
    filters = form.filters()
    try:
        return _package(request, _filtered_stem(filters), filters=filters)
    except (PermissionDenied, ValidationError, ImproperlyConfigured) as error:
        form.add_error(None, _message(error))
        return _home_with_errors(request, form, site_codes, status=_status(error))


@login_required
@require_POST
def trail_export(request, object_type: str, object_id: str):
    """Export one request's or case's trail as the auditor's package; 404 outside one's scope."""
    label = OBJECT_TYPES.get(object_type)
    if label is None or not _is_row_id(object_id):
        raise Http404("No such trail.")
    try:
        events = trail_for_export(request.user, label, object_id)
    except AuditEvent.DoesNotExist:
        raise Http404("No such trail.") from None
    reference = (
        events.filter(object_type=label, object_id=object_id)
        .order_by("-sequence")
        .values_list("object_reference", flat=True)
        .first()
    )
    # A stored reference reads "AR-000031 <title> @ <region>/<site>"; its first word names it.
    short = (reference or "").split(" ", 1)[0] or object_id
    subject = Subject(kind=object_type, object_id=object_id, reference=short)
    stem = f"tollgate-trail-{_file_part(subject.reference)}"
    try:
        return _package(request, stem, subject=subject, events=events)
    except ImproperlyConfigured as error:
        messages.error(request, _message(error))
        return redirect("audit:trail", object_type, object_id)


def _filtered_stem(filters: ExportFilters) -> str:
    parts = [filters.region, *filters.sites, filters.kind.rstrip("."), filters.actor]
    if filters.date_from or filters.date_to:
        parts.append(f"{filters.date_from or ''}..{filters.date_to or ''}")
    described = "-".join(_file_part(part) for part in parts if part) or "all"
    return f"tollgate-ledger-{described[:80]}"


def _file_part(text: str) -> str:
    """Text made safe for a file name: letters, digits, dots and hyphens."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.") or "x"


def _package(request, stem: str, **selection) -> FileResponse:
    """The auditor's package: the data as JSON Lines and CSV, the signed manifest, the
    standalone verifier and a README saying how to check them, as one zip file.

    The data is streamed from the ledger into temporary files (constant memory, whatever the
    size); the export, or its refusal, is recorded in the ledger. The file name ends with the
    number of the ledger event recording the export, so no two exports share a name.
    """
    outs = {fmt: (f"events.{fmt}", tempfile.TemporaryFile()) for fmt in EXPORT_FORMATS}  # noqa: SIM115 - closed below
    try:
        manifest = audit_export_files(actor=request.user, outs=outs, **selection)
        stamp = manifest["generated_at"][:19].replace("-", "").replace(":", "")
        folder = f"{stem}-{stamp}Z-export{manifest['recorded_as_sequence'] or '-pending'}"
        bundle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response
        with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in outs.values():
                data.seek(0)
                with archive.open(f"{folder}/{name}", "w") as member:
                    while chunk := data.read(1 << 16):
                        member.write(chunk)
            archive.writestr(
                f"{folder}/manifest.json",
                json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
            )
            archive.write(verify_export.__file__, f"{folder}/verify_export.py")
            archive.writestr(f"{folder}/README.txt", _readme(request, manifest, folder))
    finally:
        for _, data in outs.values():
            data.close()
    bundle.seek(0)
    return FileResponse(
        bundle, as_attachment=True, filename=f"{folder}.zip", content_type="application/zip"
    )


def _readme(request, manifest: dict, folder: str) -> str:
    key_url = request.build_absolute_uri(reverse("audit-key"))
    return render_to_string(
        "audit/package_readme.txt",
        {"manifest": manifest, "folder": folder, "key_url": key_url},
    )


def _status(error) -> int:
    return 503 if isinstance(error, ImproperlyConfigured) else 403


def _home_with_errors(request, form: ExportForm, site_codes: list[str], *, status: int = 400):
    search = SearchForm(None, site_codes=site_codes)
    return render(request, "audit/home.html", _area(request.user, search, form), status=status)


def _message(error) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error)


@login_required
@require_POST
def verify(request):
    """Recompute the chain now, at most once per AUDIT_VERIFY_INTERVAL_SECONDS company-wide.

    The result is itself recorded in the ledger (`audit.verified`), which is also what the
    interval is measured from, so every web process sees the same limit.
    """
    _audited_site_codes(request.user)
    last = _last_verification()
    interval = timedelta(seconds=settings.AUDIT_VERIFY_INTERVAL_SECONDS)
    if last is not None and timezone.now() - last.at < interval:
        wait = int((last.at + interval - timezone.now()).total_seconds()) + 1
        messages.error(
            request,
            f"The chain was verified {last.at:%H:%M:%S} UTC; it can be verified again in "
            f"{wait} seconds. The last result is shown below.",
        )
        return redirect("audit:home")
    # A second press while one run is queued or running is refused across every web process
    # that shares the cache; the ledger's own record (above) covers the rest of the interval.
    if not cache.add(VERIFY_LOCK, timezone.now().isoformat(), interval.total_seconds()):
        messages.error(request, "A verification is already running; its result appears below.")
        return redirect("audit:home")
    tasks.verify.delay(request.user.pk)
    messages.info(
        request,
        "Verification started. The whole chain is recomputed in the background; the result "
        "appears below when it is done.",
    )
    return redirect("audit:home")


def _verification_state() -> dict:
    """The last verdict, and whether a run asked for since is still going."""
    last = _last_verification()
    started = cache.get(VERIFY_LOCK)
    running = False
    if started:
        try:
            started_at = datetime.fromisoformat(started)
        except (TypeError, ValueError):
            started_at = timezone.now()
        # A run the worker never picked up stops being shown as running after a while.
        fresh = timezone.now() - started_at < timedelta(seconds=VERIFY_SHOWN_RUNNING_SECONDS)
        running = fresh and (last is None or last.at < started_at)
    return {"last": last, "running": running}


@login_required
@require_safe
def verify_status(request):
    """The verification panel alone: polled every 2 seconds while a run is going."""
    _audited_site_codes(request.user)
    return render(request, "audit/_verification.html", {"verification": _verification_state()})


def _signing_key_or_problem() -> dict:
    try:
        key = signing.current_key()
    except ImproperlyConfigured as error:
        return {"problem": str(error)}
    return {
        "key_id": key.key_id,
        "public_key": key.base64,
        "previous": signing.previous_keys(),
    }


@require_safe
@cache_control(public=True, max_age=3600)
def published_key(request):
    """The installation's audit signing keys, public: current, and previous with retirement."""
    try:
        document = signing.published()
    except ImproperlyConfigured:
        raise Http404("No audit signing key is configured.") from None
    if request.GET.get("format") == "pem":
        return HttpResponse(signing.current_key().pem, content_type="application/x-pem-file")
    response = JsonResponse(document)
    response["Access-Control-Allow-Origin"] = "*"
    return response
