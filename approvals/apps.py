from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        from approvals import notifications
        from approvals.models import ApprovalRequest, Delegation
        from approvals.selectors import delegations_used
        from portal.audit.trails import link_trails
        from portal.notify.labels import register_labeller
        from portal.notify.models import Topic

        # A request's trail shows the delegations its decisions were taken under.
        link_trails(
            ApprovalRequest._meta.label_lower, Delegation._meta.label_lower, delegations_used
        )
        register_labeller(Topic.STEP, notifications.step_labels)
        register_labeller(Topic.REQUEST, notifications.request_labels)
