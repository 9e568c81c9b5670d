"""The auditor's pages: the ledger searched, decision trails, exports and the chain's health.

Everything here is read through `portal.audit.selectors`, so an auditor finds only events in
their audit scope; someone who may audit no site gets 404 for the whole area.
"""

import tempfile
import zipfile
from datetime import UTC, datetime, time, timedelta
from io import BytesIO

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.audit import tasks
from portal.audit.export import audit_export
from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.selectors import (
    CASE_TYPE,
    REQUEST_TYPE,
    ExportFilters,
    events_visible_to,
    regions_audited_whole,
    trail_for,
)
from portal.audit.services import VERIFIED
from sites.policies import Capability, sites_where

# Short names for the URL; a full "app_label.model" names any other object.
OBJECT_TYPES = {"request": REQUEST_TYPE, "case": CASE_TYPE}
SHORT_NAMES = {label: short for short, label in OBJECT_TYPES.items()}
KIND_NAMES = {REQUEST_TYPE: "Approval request", CASE_TYPE: "Exception case"}
PAGE_SIZE = 25
VERIFY_LOCK = "tollgate:audit-verify-running"
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
            "subject": subject,
            "record_kind": KIND_NAMES.get(label, "Record"),
            "first": events[0],
            "last": events[-1],
        },
    )


def _is_row_id(text: str) -> bool:
    """Whether `text` can name a request or case row: ASCII digits within a 64-bit key.

    Anything else (a huge number, "²", a NUL) names nothing, and must not reach the database.
    """
    return text.isascii() and text.isdigit() and int(text) <= MAX_ROW_ID


# --- forms ------------------------------------------------------------------------------------


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
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")
    action = forms.CharField(
        required=False, max_length=64, label="Action", help_text="e.g. request.approved or request."
    )
    site = forms.ChoiceField(required=False, label="Site")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, site_codes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", "Any site"), *((code, code) for code in site_codes)]


class ExportForm(_Dates):
    """An export's format and filters, as `manage.py export_audit` takes them."""

    field_order = ["fmt", "sites", "region", "kind", "actor", "date_from", "date_to"]

    fmt = forms.ChoiceField(
        label="Format",
        choices=[("csv", "CSV"), ("jsonl", "JSON Lines")],
        initial="csv",
    )
    sites = forms.MultipleChoiceField(required=False, label="Sites (none: all in your scope)")
    region = forms.ChoiceField(required=False, label="Region")
    kind = forms.CharField(
        required=False, max_length=64, label="Action", help_text="e.g. request.approved or request."
    )
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")

    def __init__(self, *args, site_codes: list[str], region_codes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sites"].choices = [(code, code) for code in site_codes]
        self.fields["region"].choices = [("", "Any"), *((code, code) for code in region_codes)]

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
    page = list(events.select_related("site").order_by("-sequence")[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    for event in page:
        event.trail_type = SHORT_NAMES.get(event.object_type)
    return page, (page[-1].sequence if more else None)


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
        "next_before": next_before,
        "query": query,
        "export_form": export_form,
        "verification": _last_verification(),
        "checkpoint": AuditCheckpoint.objects.order_by("-sequence", "-at").first(),
        "recent_exports": list(
            AuditEvent.objects.filter(action="audit.exported", actor=user.pk).order_by("-sequence")[
                :5
            ]
        ),
    }


@login_required
@require_POST
def export(request):
    """Run an export and download its data file and manifest together, as one zip file.

    The data is streamed from the ledger into a temporary file (constant memory, whatever the
    size); the export, or its refusal, is recorded in the ledger by `audit_export`.
    """
    site_codes = _audited_site_codes(request.user)
    form = ExportForm(
        request.POST, site_codes=site_codes, region_codes=regions_audited_whole(request.user)
    )
    if not form.is_valid():
        return _home_with_errors(request, form, site_codes)
    fmt = form.cleaned_data["fmt"]
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    data_name = f"audit-export-{stamp}.{fmt}"
    data = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response or below
    manifest = BytesIO()
    try:
        audit_export(
            actor=request.user,
            filters=form.filters(),
            fmt=fmt,
            out=data,
            manifest_out=manifest,
            data_name=data_name,
        )
    except (PermissionDenied, ValidationError) as error:
        data.close()
        form.add_error(None, _message(error))
        return _home_with_errors(request, form, site_codes, status=403)
    bundle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        data.seek(0)
        with archive.open(data_name, "w") as member:
            while chunk := data.read(1 << 16):
                member.write(chunk)
        archive.writestr(f"{data_name}.manifest.json", manifest.getvalue())
    data.close()
    bundle.seek(0)
    return FileResponse(
        bundle,
        as_attachment=True,
        filename=f"audit-export-{stamp}.zip",
        content_type="application/zip",
    )


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
