"""The exception queues and the case page.

Every POST goes to one exceptions.services call. A case outside the viewer's scope answers 404
(through exceptions.selectors.case_for); the buttons shown are those exceptions.policies allows,
each hidden one with the reason. A case someone else closed or moved first answers the 409
page with its current state; bad input shows the form again and changes nothing.
"""

import json
from html import escape

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.views.decorators.http import require_POST

from approvals.models import HeldAt
from approvals.selectors import role_holders
from exceptions import customer_impact, evidence, policies, selectors, services, suggestions
from exceptions.forms import (
    AssignForm,
    BulkAssignForm,
    QueueFilterForm,
    ReasonForm,
    ResolveForm,
)
from exceptions.models import OPEN_CASE_STATES, CaseState, ExceptionCase, Queue, Severity
from exceptions.rules import QUEUE_ROLES, RESOLUTION_CODES, resolution_codes
from portal.audit.models import LEDGER_ORDER, AuditEvent
from portal.audit.selectors import CASE_TYPE, trail_for
from portal.core import responses
from portal.core.errors import STALE, Conflict
from portal.core.formatting import count, moment, money
from sites import policies as site_policies

QUEUE_PAGE = 100


def _case_or_404(user, case_id: int) -> ExceptionCase:
    try:
        return selectors.case_for(user, case_id)
    except ExceptionCase.DoesNotExist:
        raise Http404("No such exception case.") from None


@login_required
def queues(request):
    """The queues the person works (or every queue they see), by priority, paged in SQL."""
    now = timezone.now()
    reach = _reach(request, at=now)
    sites = list(selectors.sites_seen(reach))
    form = QueueFilterForm(request.GET or None, sites=sites)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    every_queue = data.get("show") == "all"
    filters = selectors.QueueFilters(
        queue=data.get("queue", ""),
        site_id=data.get("site"),
        kind=data.get("kind", ""),
        severity=data.get("severity", ""),
        owner_id=request.user.pk if data.get("mine") else None,
        overdue=data.get("overdue", False),
        worked_only=not every_queue,
    )
    scope = selectors.QueueFilters(worked_only=not every_queue)
    summary = selectors.queue_summary(request.user, at=now, filters=scope, reach=reach)
    # Unfiltered, the page lists the cases the summary counts: their number is its total.
    known = sum(entry["open"] for entry in summary.values()) if filters == scope else None
    page = selectors.queue_page(
        request.user,
        filters,
        at=now,
        limit=QUEUE_PAGE,
        reach=reach,
        total=known,
        fields=selectors.PAGE_FIELDS,
    )
    worked = policies.worked_queues(request.user)
    labels = dict(Queue.choices)
    buckets = [label for label, _ in selectors.AGING_BUCKETS]
    workable = [item for item in page.items if item.workable]
    # Offered: people who work a queue of the cases shown at one of their sites; the service
    # still checks each case against the person chosen.
    people = selectors.workers_of(
        {item.case.queue for item in workable}, {item.case.site for item in workable}
    ).values_list("pk", "first_name", "last_name", "username")
    template = "exceptions/_queue_list.html" if request.htmx else "exceptions/queues.html"
    return render(
        request,
        template,
        {
            "now": now,
            "form": form,
            "every_queue": every_queue,
            "worked_labels": [labels[q] for q in worked],
            "summary": [
                (labels.get(q, q), q, entry, [entry["aging"][b] for b in buckets])
                for q, entry in sorted(summary.items())
            ],
            "buckets": buckets,
            "rows": _rows(page.items, now),
            "total": page.total,
            "shown": len(page.items),
            "people": _options(people) if workable else "",
            "base_currency": settings.TOLLGATE_BASE_CURRENCY,
            "any_workable": bool(workable),
        },
    )


# The choices' labels, as the models' get_FOO_display() give them, looked up once per row.
_QUEUES, _STATES, _SEVERITIES = dict(Queue.choices), dict(CaseState.choices), dict(Severity.choices)

# One case of the queue page. The rows are written here, each value escaped as the template
# would, rather than by the template's loop: a hundred rows through the template language cost
# more than everything else the page does at 10k requests.
_ROW = """
      <li class="item queue-row{overdue}" data-case="{pk}">
        <span class="pick">{pick}</span>
        <a class="item-link" href="{url}">
          <span class="item-main">
            <span class="ref">{reference}</span>
            <span class="title">{title}</span>
            <span class="meta">{queue} · {site} · {state}{read_only}</span>
            <span class="why">{reason}</span>
          </span>
          <span class="age"><span class="cell-label">Age </span>{age}</span>
          <span class="num-cell stake"><span class="cell-label">At stake </span>{stake}</span>
          <span class="owner"><span class="cell-label">Owner </span>{owner}</span>
          <span><span class="tag sev-{severity}">{severity_label}</span></span>
          <span class="due"><span class="cell-label">Due </span>{due}</span>
        </a>
      </li>"""
_PICK = '<input type="checkbox" name="cases" value="{pk}" id="pick-{pk}" aria-label="Select {ref}">'
_READ_ONLY = ' · <span class="read-only-note">read-only for you</span>'


def _rows(items: list[selectors.QueueItem], now) -> str:
    """The page's cases as `<li>`s, most urgent first."""
    # A case's address differs from the next one's only by its id: reversed once per page
    # (reversing a URL costs more than writing the rest of the row).
    head, _, tail = reverse("exceptions:detail", args=[_ANY_ID]).partition(str(_ANY_ID))
    base = settings.TOLLGATE_BASE_CURRENCY
    rows = "".join(_row(item, now, f"{head}{int(item.case.pk)}{tail}", base) for item in items)
    return mark_safe(rows)  # noqa: S308 - every value is escaped in _row


_ANY_ID = 987654321


def _row(item: selectors.QueueItem, now, url: str, base_currency: str) -> str:
    case = item.case
    owner = case.owner
    reference = escape(case.reference)
    due = ""
    if case.due_at:
        at = escape(timezone.localtime(case.due_at).isoformat())
        due = f'<time datetime="{at}">{escape(moment(case.due_at, case.site, now=now))}</time>'
    return _ROW.format(
        overdue=" overdue" if case.due_at and case.due_at < now else "",
        pk=int(case.pk),
        pick=_PICK.format(pk=int(case.pk), ref=reference) if item.workable else "",
        url=escape(url),
        reference=reference,
        title=escape(case.title),
        queue=escape(_QUEUES.get(case.queue, case.queue)),
        site=escape(f"{case.site.code} {case.site.name}"),
        state=escape(_STATES.get(case.state, case.state)),
        read_only="" if item.workable else _READ_ONLY,
        reason=escape(capfirst(item.reason)),
        age=escape(count(item.age_days, "working day") if item.age_days else "new today"),
        stake=escape(money(item.stake, base_currency) if item.stake else "—"),
        owner=escape((owner.get_full_name() or owner.username) if owner else "nobody yet"),
        severity=escape(case.severity),
        severity_label=escape(_SEVERITIES.get(case.severity, case.severity)),
        due=due or "no deadline",
    )


def _reach(request, *, at) -> policies.CaseReach:
    """The person's reach over cases, read once per web request (one query)."""
    reach = getattr(request, "_tollgate_case_reach", None)
    if reach is None:
        reach = policies.reach_of(request.user, at=at)
        request._tollgate_case_reach = reach
    return reach


def _options(people) -> str:
    """The picker's `<option>`s, one per (id, first, last, username), each named as
    `User.get_full_name` (or the username) and escaped as the template would.

    Finance's picker lists about two thousand people: written by the template's loop, it cost
    more than the rest of the page; as one string it costs a millisecond or two.
    """
    options = "".join(
        f'<option value="{int(pk)}">{escape(f"{first} {last}".strip() or username)}</option>'
        for pk, first, last, username in people
    )
    return mark_safe(options)  # noqa: S308 - the id is a number, the name escaped above


@login_required
@require_POST
def assign_many(request):
    """Assign the selected cases to oneself or to one person; say what happened to each."""
    posted = [int(v) for v in request.POST.getlist("cases") if v.isdigit()]
    chosen = list(selectors.cases_visible_to(request.user).filter(pk__in=posted))
    if len(chosen) != len(set(posted)):
        # A case outside the person's scope looks like one that does not exist.
        raise Http404("No such exception case.")
    people = selectors.workers_of({c.queue for c in chosen}, {c.site for c in chosen})
    form = BulkAssignForm(request.POST, people=people)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(_back_to_queues(request))
    assignee = form.chosen(request.user)
    outcomes = services.case_assign_many(
        actor=request.user, case_ids=form.cleaned_data["cases"], assignee=assignee
    )
    return render(
        request,
        "exceptions/assign_result.html",
        {
            "outcomes": outcomes,
            "assignee": assignee,
            "assigned": sum(1 for o in outcomes if o.ok),
            "refused": sum(1 for o in outcomes if not o.ok),
            "back": _back_to_queues(request),
        },
    )


def _back_to_queues(request) -> str:
    """The queue page the form was sent from, never another site."""
    back = request.POST.get("back", "")
    url = reverse("exceptions:queues")
    return back if back.startswith(url) and "//" not in back else url


def _workers(case: ExceptionCase) -> list:
    """The people who work the case's queue at its site (one query)."""
    return list(role_holders(sorted(QUEUE_ROLES[case.queue]), HeldAt.SITE, case.site))


def _timeline(user, case: ExceptionCase) -> list[AuditEvent]:
    try:
        return trail_for(user, CASE_TYPE, str(case.pk))
    except AuditEvent.DoesNotExist:
        return list(
            AuditEvent.objects.filter(object_type=CASE_TYPE, object_id=str(case.pk))
            .select_related("actor")
            .order_by(*LEDGER_ORDER)
        )


# What each trail event says on the case page.
ACTION_WORDS = {
    "case.opened": "Opened",
    "case.seen_again": "Reported again",
    "case.assigned": "Assigned",
    "case.started": "Work started",
    "case.resolved": "Resolved",
    "case.resolution_awaits_approval": "Resolution sent for approval",
    "case.resolution_refused": "Resolution refused",
    "case.dismissed": "Dismissed",
    "case.reopened": "Reopened",
    "case.reminded": "Reminder sent",
    "case.escalated": "Escalated as overdue",
}


def _worded(timeline: list[AuditEvent]) -> list[AuditEvent]:
    for event in timeline:
        event.words = ACTION_WORDS.get(event.action, event.action.split(".")[-1].replace("_", " "))
        if event.actor_id and event.actor:
            event.actor_label = event.actor.get_full_name() or event.actor_label
        elif not event.actor_id:
            event.actor_label = "Tollgate"
    return timeline


def _page(request, case: ExceptionCase, *, status=200, **forms):
    people = _workers(case)
    timeline = _worded(_timeline(request.user, case))
    # Earlier sightings' evidence, oldest first: a carrier's earlier statuses live only there.
    actions = policies.available_actions(request.user, case)
    is_open = case.state in OPEN_CASE_STATES
    history = [
        event.before.get("evidence")
        for event in timeline
        if event.action == "case.seen_again" and isinstance(event.before, dict)
    ]
    return render(
        request,
        "exceptions/detail.html",
        {
            "case": case,
            "actions": actions,
            "is_open": is_open,
            # Open, and nothing on it is the viewer's to do: one sentence instead of five.
            "read_only": is_open and all(actions[a] for a in ("assign", "resolve", "dismiss")),
            "assign_form": forms.get("assign_form") or AssignForm(people=people),
            "resolve_form": forms.get("resolve_form") or ResolveForm(kind=case.kind),
            "suggested": suggestions.suggest(case) if is_open and settings.DECISION_ADVICE else [],
            "customer_summary": customer_impact.delay_summary(case, request.user)
            if settings.DECISION_ADVICE
            else None,
            "dismiss_form": forms.get("dismiss_form") or ReasonForm(auto_id="dismiss_%s"),
            "reopen_form": forms.get("reopen_form") or ReasonForm(auto_id="reopen_%s"),
            "timeline": timeline,
            "evidence": evidence.present(case, history=history),
            "payload_text": json.dumps(
                case.payload, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder
            ),
            "odoo_record": evidence.odoo_url(case.odoo_model, case.odoo_id),
            "stake_currency": case.currency or case.site.currency,
            "may_audit": site_policies.may(request.user, site_policies.Capability.AUDIT, case.site),
            # A code withdrawn since still reads with the label it was resolved under.
            "resolution_label": (RESOLUTION_CODES[case.kind] | resolution_codes(case.kind)).get(
                case.resolution_code, ""
            ),
        },
        status=status,
    )


def _stale(request, case_id: int, error: Exception):
    case = _case_or_404(request.user, case_id)
    return responses.stale(
        request, error, reference=case.reference, doing="working on it", context={"case": case}
    )


def _wrong_state(request, case: ExceptionCase, *, open_wanted: bool):
    """The 409 page for an action the case's state rules out, before its form is read: the
    page shows no form for that action, so the form's own errors would be shown nowhere."""
    if (case.state in OPEN_CASE_STATES) == open_wanted:
        return None
    state = case.get_state_display().lower()
    needed = "an open case" if open_wanted else "a closed case"
    return _stale(request, case.pk, Conflict(f"{case.reference} is {state}; this needs {needed}."))


def _run(request, case, service, success: str, form=None, form_name: str = "", **kwargs):
    """Call one service; turn its refusals into the right page."""
    try:
        changed = service(actor=request.user, case_id=case.pk, **kwargs)
    except STALE as error:
        return _stale(request, case.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    except ValidationError as error:
        if form is None:
            messages.error(request, " ".join(error.messages))
            return _page(request, case, status=400)
        for field, errors in getattr(error, "message_dict", {"__all__": error.messages}).items():
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, case, status=400, **{form_name: form})
    text = success(changed) if callable(success) else success
    messages.success(request, text.format(ref=case.reference))
    return redirect("exceptions:detail", case.pk)


@login_required
def detail(request, case_id: int):
    """Evidence, occurrences, payload, the approval it waits for, actions and timeline."""
    return _page(request, _case_or_404(request.user, case_id))


@login_required
@require_POST
def assign(request, case_id: int):
    case = _case_or_404(request.user, case_id)
    if request.POST.get("to") == "me":
        owner = request.user
        form = None
    else:
        form = AssignForm(request.POST, people=_workers(case))
        if not form.is_valid():
            return _page(request, case, status=400, assign_form=form)
        owner = get_user_model().objects.get(pk=form.cleaned_data["owner"])
    success = (
        "{ref} is now yours."
        if owner == request.user
        else (f"{{ref}} is assigned to {owner.get_full_name() or owner.get_username()}.")
    )
    return _run(request, case, services.case_assign, success, form, "assign_form", owner=owner)


@login_required
@require_POST
def start(request, case_id: int):
    case = _case_or_404(request.user, case_id)
    return _run(request, case, services.case_start, "Work on {ref} has started.")


@login_required
@require_POST
def resolve(request, case_id: int):
    case = _case_or_404(request.user, case_id)
    if refusal := _wrong_state(request, case, open_wanted=True):
        return refusal
    form = ResolveForm(request.POST, kind=case.kind)
    if not form.is_valid():
        return _page(request, case, status=400, resolve_form=form)
    return _run(
        request,
        case,
        services.case_resolve,
        _resolved_message,
        form,
        "resolve_form",
        code=form.cleaned_data["code"],
        note=form.cleaned_data["note"],
    )


def _resolved_message(case: ExceptionCase) -> str:
    if case.state == CaseState.RESOLVED:
        return "{ref} is resolved."
    waiting = case.linked_request.reference if case.linked_request_id else "an approval"
    return f"{{ref}} waits for {waiting}: this resolution needs an approval first."


@login_required
@require_POST
def dismiss(request, case_id: int):
    case = _case_or_404(request.user, case_id)
    if refusal := _wrong_state(request, case, open_wanted=True):
        return refusal
    form = ReasonForm(
        request.POST, message="Say why the case needs no action.", auto_id="dismiss_%s"
    )
    if not form.is_valid():
        return _page(request, case, status=400, dismiss_form=form)
    return _run(
        request,
        case,
        services.case_dismiss,
        "{ref} is dismissed.",
        form,
        "dismiss_form",
        reason=form.cleaned_data["reason"],
    )


@login_required
@require_POST
def reopen(request, case_id: int):
    case = _case_or_404(request.user, case_id)
    if refusal := _wrong_state(request, case, open_wanted=False):
        return refusal
    form = ReasonForm(request.POST, message="Say why the case is reopened.", auto_id="reopen_%s")
    if not form.is_valid():
        return _page(request, case, status=400, reopen_form=form)
    return _run(
        request,
        case,
        services.case_reopen,
        "{ref} is open again.",
        form,
        "reopen_form",
        reason=form.cleaned_data["reason"],
    )
