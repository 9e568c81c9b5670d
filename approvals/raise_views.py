"""Raising requests in the browser: choose a kind, fill in its form, save a draft or submit.

Also the draft's edit page, the revision of a rejected request, the route preview ("who would
approve this"), Odoo search-as-you-type for products and partners, and attachment downloads.
Every write is one service call; a refused form answers 400 with everything typed still in it.
"""

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_fsm import TransitionNotAllowed

from approvals import policies, selectors, services
from approvals.kinds import KINDS
from approvals.models import ApprovalRequest, Attachment, HeldAt, Outcome, RequestKind
from approvals.raise_forms import (
    KIND_INTRO,
    RequestForm,
    initial_from,
    line_formset,
)
from portal.core import erp, responses
from portal.core.errors import Conflict
from sites.roles import Role

ACTIONS = {"draft", "submit", "preview"}
# The fields a revision cannot change (approvals.services.request_resubmit keeps them).
REVISION_FIXED = ("site", "counterparty")


def _kind_or_404(kind: str) -> str:
    if kind not in KINDS:
        raise Http404("No such kind of request.")
    return kind


def _own_request_or_404(user, request_id: int) -> ApprovalRequest:
    try:
        return selectors.request_for(user, request_id)
    except ApprovalRequest.DoesNotExist:
        raise Http404("No such approval request.") from None


@login_required
@require_GET
def choose_kind(request):
    """Which kind of request to raise."""
    # The page names the site only when there is one: two say as much as two hundred.
    sites = list(policies.raising_sites(request.user).order_by("code")[:2])
    if not sites:
        return responses.refused(request, _NO_SITE)
    kinds = [(RequestKind(kind), KIND_INTRO[kind]) for kind in KINDS]
    return render(request, "approvals/raise_choose.html", {"kinds": kinds, "sites": sites})


_NO_SITE = (
    "You hold no role that raises requests at any site. An administrator grants the requester "
    "role per site; ask yours if you need to raise requests."
)


@login_required
@require_http_methods(["GET", "POST"])
def raise_new(request, kind: str):
    """A new request of `kind`: the form, then a draft or a submitted request."""
    kind = _kind_or_404(kind)
    sites = _raising_sites(request.user)
    if not sites:
        return responses.refused(request, _NO_SITE)
    if request.method == "GET":
        site = sites[0] if len(sites) == 1 else None
        initial = {"site": site.pk, "currency": site.currency} if site else {}
        form = RequestForm(kind=kind, sites=sites, initial=initial, lines=line_formset(kind))
        return _render_form(request, form, mode="new")
    form = _bound(request, kind, sites)
    action = _action(request)
    if action == "preview" or not form.is_valid():
        return _render_form(request, form, mode="new", status=200 if action == "preview" else 400)
    try:
        approval = services.request_raise(
            requester=request.user,
            kind=kind,
            submit=action == "submit",
            attachments=form.cleaned_data["attachments"],
            **form.request_fields(),
        )
    except PermissionDenied as error:
        form.add_error("site", str(error))
        return _render_form(request, form, mode="new", status=400)
    except ValidationError as error:
        form.add_service_errors(error)
        return _render_form(request, form, mode="new", status=400)
    return _done(request, approval, action)


@login_required
@require_http_methods(["GET", "POST"])
def edit_draft(request, request_id: int):
    """The requester's draft, editable until submitted."""
    approval = _own_request_or_404(request.user, request_id)
    if not policies.may_edit_draft(request.user, approval):
        raise Http404("No such draft.")
    sites = _sites_with(request.user, approval.site)
    if request.method == "GET":
        form = RequestForm(
            kind=approval.kind,
            sites=sites,
            initial=initial_from(approval),
            lines=line_formset(approval.kind, lines=_saved_lines(approval)),
        )
        return _render_form(request, form, mode="edit", approval=approval)
    form = _bound(request, approval.kind, sites)
    action = _action(request)
    if action == "preview" or not form.is_valid():
        status = 200 if action == "preview" else 400
        return _render_form(request, form, mode="edit", approval=approval, status=status)
    fields = form.request_fields(details=_kept_details(approval))
    try:
        approval = services.request_update_draft(
            actor=request.user,
            request_id=approval.pk,
            submit=action == "submit",
            attachments=form.cleaned_data["attachments"],
            **fields,
        )
    except (Conflict, TransitionNotAllowed) as error:
        messages.error(request, str(error))
        return redirect("approvals:detail", approval.pk)
    except PermissionDenied as error:
        form.add_error("site", str(error))
        return _render_form(request, form, mode="edit", approval=approval, status=400)
    except ValidationError as error:
        form.add_service_errors(error)
        return _render_form(request, form, mode="edit", approval=approval, status=400)
    return _done(request, approval, action)


@login_required
@require_http_methods(["GET", "POST"])
def resubmit(request, request_id: int):
    """A rejected request, revised by its requester and raised again as its next revision."""
    old = _own_request_or_404(request.user, request_id)
    if not policies.may_resubmit(request.user, old):
        raise Http404("This request cannot be revised.")
    sites = [old.site]
    lines = line_formset(old.kind, lines=_saved_lines(old))
    if request.method == "GET":
        form = RequestForm(
            kind=old.kind, sites=sites, initial=initial_from(old), fixed=REVISION_FIXED, lines=lines
        )
        return _render_form(request, form, mode="revise", approval=old)
    form = _bound(request, old.kind, sites, initial=initial_from(old), fixed=REVISION_FIXED)
    action = _action(request)
    if action == "preview" or not form.is_valid():
        status = 200 if action == "preview" else 400
        return _render_form(request, form, mode="revise", approval=old, status=status)
    fields = form.request_fields(details=_kept_details(old))
    changes = {name: fields[name] for name in _REVISABLE if name in fields}
    try:
        new = services.request_resubmit(
            actor=request.user,
            request_id=old.pk,
            reason=fields["reason"],
            submit=action == "submit",
            attachments=form.cleaned_data["attachments"],
            **changes,
        )
    except PermissionDenied as error:
        return responses.refused(request, error)
    except ValidationError as error:
        form.add_service_errors(error)
        return _render_form(request, form, mode="revise", approval=old, status=400)
    return _done(request, new, action)


_REVISABLE = ("title", "amount", "currency", "category", "customer_class", "details")


@login_required
@require_http_methods(["POST"])
def route_preview(request, kind: str):
    """The route a request with the typed values would take (an htmx fragment)."""
    kind = _kind_or_404(kind)
    sites = _raising_sites(request.user)
    if not sites:
        raise Http404("No such page.")
    form = _bound(request, kind, sites, with_files=False)
    return render(request, "approvals/_route_preview.html", {"route": _route(request, form)})


@login_required
@require_GET
def search_products(request):
    """Odoo products whose name or reference contains `q`, as JSON."""
    return _search(request, erp.search_products)


@login_required
@require_GET
def search_partners(request, partner_kind: str):
    """Odoo vendors or customers whose name contains `q`, as JSON."""
    if partner_kind not in erp.partner_kinds():
        raise Http404("No such search.")
    return _search(request, lambda term: erp.search_partners(term, partner_kind))


def _search(request, find):
    # Odoo's products and partners are for people who raise requests, not for everyone.
    if not policies.raising_sites(request.user).exists():
        raise Http404("No such page.")
    term = request.GET.get("q", "")[:100]
    try:
        results = find(term)
    except erp.SearchUnavailable:
        return JsonResponse(
            {"results": [], "error": "Odoo could not be searched just now; type the name."}
        )
    return JsonResponse({"results": results, "error": ""})


@login_required
@require_GET
def attachment_download(request, request_id: int, attachment_id: int):
    """One attachment, to people who may see its request; always downloaded, never shown."""
    approval = _own_request_or_404(request.user, request_id)
    try:
        attachment = approval.attachments.get(pk=attachment_id)
    except Attachment.DoesNotExist:
        raise Http404("No such attachment.") from None
    try:
        stream = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=attachment.name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- helpers ---------------------------------------------------------------------------------


def _raising_sites(user) -> list:
    return list(policies.raising_sites(user).select_related("region").order_by("code"))


def _action(request) -> str:
    action = request.POST.get("action", "submit")
    return action if action in ACTIONS else "submit"


def _bound(request, kind, sites, *, with_files=True, **extra) -> RequestForm:
    return RequestForm(
        request.POST,
        request.FILES if with_files else None,
        kind=kind,
        sites=sites,
        lines=line_formset(kind, data=request.POST),
        **extra,
    )


def _sites_with(user, site) -> list:
    sites = _raising_sites(user)
    return sites if any(s.pk == site.pk for s in sites) else [site, *sites]


def _saved_lines(approval: ApprovalRequest) -> list[dict]:
    lines = (approval.details or {}).get("line_items") or []
    return [line for line in lines if isinstance(line, dict)]


def _kept_details(approval: ApprovalRequest) -> dict:
    """Details the form does not show (e.g. from an integration), kept as they were."""
    shown = set(KINDS[approval.kind].details) | {"line_items"}
    return {k: v for k, v in (approval.details or {}).items() if k not in shown}


def _done(request, approval: ApprovalRequest, action: str):
    if action == "submit":
        messages.success(request, f"{approval.reference} is submitted.")
    else:
        messages.success(
            request, f"{approval.reference} is saved as a draft; submit it when ready."
        )
    return redirect("approvals:detail", approval.pk)


def _route(request, form: RequestForm) -> dict:
    """The route preview for the form's current values, or what is missing to show one."""
    values = _route_values(form)
    if isinstance(values, str):
        return {"missing": values}
    try:
        preview = selectors.who_would_approve(requester=request.user, **values)
    except ValidationError as error:
        return {"missing": " ".join(error.messages)}
    return {
        "preview": preview,
        "tiers": _tiers(preview, values["site"]),
        "currency": values["currency"],
        "amount": values["amount"],
    }


def _name(person) -> str:
    return person.get_full_name() or person.get_username()


def _tiers(preview, site) -> list[dict]:
    """The preview's tiers in words: who, where, how many, how fast, and the people by name."""
    tiers, stage = [], None
    for tier in preview.tiers:
        role = Role(tier.role).label
        where = f"at {site.code}" if tier.held_at == HeldAt.SITE else f"of {site.region.name}"
        tiers.append(
            {
                "role": role.lower() if role != "Finance" else "finance officer",
                "role_plural": (role.lower() if role != "Finance" else "finance officer") + "s",
                "where": where,
                "quorum": tier.quorum,
                "sla_hours": tier.sla_hours,
                "parallel": tier.stage == stage,
                "people": [_name(person) for person in tier.people],
            }
        )
        stage = tier.stage
    return tiers


def _route_values(form: RequestForm) -> dict | str:
    if form.is_bound:
        form.is_valid()
        data = {**form.cleaned_data}
    else:
        data = {name: form[name].initial for name in form.fields}
        site_id = data.get("site")
        data["site"] = next((s for s in form.sites if s.pk == site_id), None)
        data["amount"] = _initial_amount(form, data.get("amount"))
    if not data.get("site"):
        return "Choose the site to see who would approve this."
    if data.get("amount") is None:
        return "Give the amount (or the lines) to see who would approve this."
    if not data.get("currency"):
        return "Choose the currency to see who would approve this."
    return {
        "site": data["site"],
        "kind": form.kind,
        "amount": data["amount"],
        "currency": data["currency"],
        "category": data.get("category") or "",
        "customer_class": data.get("customer_class") or "",
    }


def _initial_amount(form, amount):
    formset = form.lines_formset
    if formset is None or not formset.initial:
        return amount
    return sum((Decimal(line.get("subtotal") or 0) for line in formset.initial), Decimal(0))


def _rejection(approval: ApprovalRequest):
    """The decision that rejected `approval`, with who made it."""
    return (
        approval.decisions.filter(outcome=Outcome.REJECT)
        .select_related("actor")
        .order_by("-at", "-pk")
        .first()
    )


def _render_form(request, form: RequestForm, *, mode: str, approval=None, status=200):
    files_chosen = bool(request.FILES.getlist("attachments")) if request.method == "POST" else False
    return render(
        request,
        "approvals/raise_form.html",
        {
            "form": form,
            "kind": RequestKind(form.kind),
            "kind_intro": KIND_INTRO[form.kind],
            "spec": form.spec,
            "lines": form.lines_formset,
            "mode": mode,
            "approval": approval,
            "attachments": list(approval.attachments.all()) if approval else [],
            "rejection": _rejection(approval) if mode == "revise" else None,
            "route": _route(request, form),
            # Nothing is kept from a refused form or a preview, files included.
            "files_to_choose_again": files_chosen,
        },
        status=status,
    )
