from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        from approvals.models import ApprovalRequest, Delegation
        from approvals.selectors import delegations_used
        from portal.audit.trails import link_trails

        # A request's trail shows the delegations its decisions were taken under.
        link_trails(
            ApprovalRequest._meta.label_lower, Delegation._meta.label_lower, delegations_used
        )
