"""Every state lives in a protected state machine.

A field that holds where a record is in its life (named `state` or `status`, or offering
choices such as "pending" and "approved") must be a protected `FSMField`, so that it moves only
through the transitions its model declares. The few set-based updates that move many rows at
once are queryset methods beside those transitions and write only what the transitions would.
"""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps
from django_fsm import FSMField, FSMFieldMixin

from approvals.models import UNFINISHED_STEP_STATES, ApprovalStep, StepState
from portal.integrations.odoo.models import SUPERSEDABLE_STATES, OutboxItem, OutboxState
from portal.notify.models import MailState, OutboxMail

ROOT = Path(__file__).resolve().parents[2]
PROJECT_APPS = ("approvals", "exceptions", "sites", "portal")

# Choice values that name a stage of a record's life rather than a kind, a role or a verb.
LIFECYCLE_WORDS = {
    "draft", "new", "open", "pending", "waiting", "active", "accepted", "assigned",
    "in_progress", "in_review", "submitted", "approved", "rejected", "applied", "processed",
    "sent", "delivered", "resolved", "dismissed", "closed", "expired", "failed", "abandoned",
    "superseded", "withdrawn", "cancelled", "done",
}  # fmt: skip

# Fields that look like states but are not; each with the reason. Empty: none is.
NOT_STATES: dict[str, str] = {}


def looks_like_state(field) -> bool:
    name = field.name
    if name in ("state", "status") or name.endswith(("_state", "_status")):
        return True
    values = {str(value) for value, _label in field.flatchoices} if field.choices else set()
    return len(values & LIFECYCLE_WORDS) >= 2


def unprotected_states(model_classes) -> list[str]:
    """`app.Model.field` for every state-like field that is not a protected FSMField."""
    found = []
    for model in model_classes:
        for field in model._meta.concrete_fields:
            if not looks_like_state(field):
                continue
            label = f"{model._meta.label}.{field.name}"
            if label in NOT_STATES:
                continue
            if not (isinstance(field, FSMFieldMixin) and field.protected):
                found.append(label)
    return found


def project_models():
    return [
        model
        for model in apps.get_models()
        if model._meta.app_config.name.split(".")[0] in PROJECT_APPS
    ]


def test_every_state_of_the_project_is_a_protected_state_machine():
    assert unprotected_states(project_models()) == []


def test_the_walk_finds_the_known_state_machines():
    # A walk that found nothing would pass the test above for the wrong reason.
    walked = {
        f"{model._meta.label}.{field.name}"
        for model in project_models()
        for field in model._meta.concrete_fields
        if looks_like_state(field)
    }
    assert {
        "approvals.ApprovalRequest.state",
        "approvals.ApprovalStep.state",
        "exceptions.ExceptionCase.state",
        "odoo.OutboxItem.state",
        "notify.OutboxMail.state",
        "webhooks.InboundDelivery.status",
        "webhooks.OutboundDelivery.state",
    } <= walked


def test_every_allowed_exception_still_exists_and_says_why():
    fields = {
        f"{model._meta.label}.{field.name}"
        for model in project_models()
        for field in model._meta.concrete_fields
    }
    for label, reason in NOT_STATES.items():
        assert label in fields, f"{label} is allowed as a plain field but no longer exists"
        assert len(reason.split()) >= 4, f"{label} needs a reason"


@isolate_apps("portal.core")
def test_a_plain_state_field_added_to_a_model_fails_the_walk():
    class Parcel(models.Model):  # noqa: DJ008 - never shown
        status = models.CharField(max_length=16, default="pending")

        class Meta:
            app_label = "core"

    class Shipment(models.Model):  # noqa: DJ008 - never shown
        # Not named like a state, but its choices are stages of a life.
        stage = models.CharField(
            max_length=16, choices=[("pending", "Pending"), ("delivered", "Delivered")]
        )
        kind = models.CharField(max_length=16, choices=[("road", "Road"), ("sea", "Sea")])

        class Meta:
            app_label = "core"

    class Invoice(models.Model):  # noqa: DJ008 - never shown
        state = FSMField(default="draft")  # a state machine anyone may still assign

        class Meta:
            app_label = "core"

    class Order(models.Model):  # noqa: DJ008 - never shown
        state = FSMField(default="draft", protected=True)

        class Meta:
            app_label = "core"

    assert unprotected_states([Parcel, Shipment, Invoice, Order]) == [
        "core.Parcel.status",
        "core.Shipment.stage",
        "core.Invoice.state",
    ]


def _sources(transition_method) -> set[str]:
    return {str(source) for source in transition_method._django_fsm.transitions}


def _target(transition_method) -> str:
    (transition,) = {t.target for t in transition_method._django_fsm.transitions.values()}
    return str(transition)


@pytest.mark.parametrize(
    ("transition", "sources", "target"),
    [
        (ApprovalStep.close, UNFINISHED_STEP_STATES, StepState.CLOSED),
        (OutboxItem.supersede, SUPERSEDABLE_STATES, OutboxState.SUPERSEDED),
        (OutboxMail.retry, (MailState.FAILED,), MailState.PENDING),
    ],
    ids=["steps.close_unfinished", "outbox.supersede", "mail.retry"],
)
def test_set_based_updates_move_rows_as_their_transition_does(transition, sources, target):
    # The queryset methods filter on `sources` and write `target`: the same as the transition.
    assert _sources(transition) == {str(source) for source in sources}
    assert _target(transition) == str(target)


def _state_updates(tree: ast.AST):
    """Lines of `.update(state=...)` / `.update(status=...)` calls in a module."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and any(keyword.arg in ("state", "status") for keyword in node.keywords)
        ):
            yield node.lineno


def test_states_are_written_in_bulk_only_by_the_models_querysets():
    # Services move many rows through `close_unfinished`, `supersede` and `retry`; a bare
    # `update(state=...)` elsewhere would be a transition the state machine does not know.
    stray = []
    for package in PROJECT_APPS:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or "sandbox" in relative.parts:
                continue
            if path.name == "models.py" or path.parent.name == "models":
                continue
            tree = ast.parse(path.read_text(), filename=str(relative))
            stray += [f"{relative}:{line}" for line in _state_updates(tree)]
    assert stray == []


def test_a_bare_state_update_is_found():
    module = ast.parse("Step.objects.filter(pk=1).update(state='closed', completed_at=now)\n")
    assert list(_state_updates(module)) == [1]
