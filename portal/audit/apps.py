from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "portal.audit"
    label = "audit"
    verbose_name = "Audit ledger"

    def ready(self) -> None:
        # Connects the sign-in receivers and the task context signals.
        from portal.audit import context, signals  # noqa: F401
        from portal.audit.services import audit_record
        from portal.core import ledger

        ledger.connect(audit_record)
