"""Queue rules, case deadlines and resolution codes: changed by superusers, each change audited."""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from exceptions import policies
from exceptions.models import CaseDeadline, QueueRule, ResolutionCode
from portal.audit.services import audit_record


def queue_rule_save(*, actor, rule: QueueRule) -> QueueRule:
    """Add or change a queue rule; cases already raised keep their queue."""
    return _config_save(actor, rule, "queue_rule")


def queue_rule_delete(*, actor, rule_id: int) -> None:
    """Remove a queue rule; locks it."""
    _config_delete(actor, QueueRule, rule_id, "queue_rule")


def case_deadline_save(*, actor, deadline: CaseDeadline) -> CaseDeadline:
    """Add or change how long cases of a severity may stay open; open cases keep their due time."""
    return _config_save(actor, deadline, "case_deadline")


def case_deadline_delete(*, actor, deadline_id: int) -> None:
    """Remove a deadline row (the fixed default applies again); locks it."""
    _config_delete(actor, CaseDeadline, deadline_id, "case_deadline")


def resolution_code_save(*, actor, code: ResolutionCode) -> ResolutionCode:
    """Add, relabel or withdraw a resolution code of a kind; closed cases keep their code."""
    return _config_save(actor, code, "resolution_code")


def resolution_code_delete(*, actor, code_id: int) -> None:
    """Remove a resolution code row (a built-in code it changed applies again); locks it."""
    _config_delete(actor, ResolutionCode, code_id, "resolution_code")


def _config_save(actor, row, name: str):
    if not policies.may_configure(actor):
        raise PermissionDenied("Only a superuser changes queue rules and deadlines.")
    with transaction.atomic():
        before = None
        if row.pk is not None:
            before = _config(type(row).objects.select_for_update().get(pk=row.pk))
        row.full_clean()
        row.save()
        audit_record(
            action=f"{name}.{'changed' if before else 'created'}",
            actor=actor,
            obj=row,
            site=getattr(row, "site", None),
            region=getattr(row, "region", None),
            before=before,
            after=_config(row),
        )
    return row


def _config_delete(actor, model, pk: int, name: str) -> None:
    if not policies.may_configure(actor):
        raise PermissionDenied("Only a superuser changes queue rules and deadlines.")
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        audit_record(
            action=f"{name}.deleted",
            actor=actor,
            obj=row,
            site=getattr(row, "site", None),
            region=getattr(row, "region", None),
            before=_config(row),
        )
        row.delete()


def _config(row) -> dict:
    return {
        field.attname: getattr(row, field.attname)
        for field in row._meta.concrete_fields
        if not field.primary_key
    }
