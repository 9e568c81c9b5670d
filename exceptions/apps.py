from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exception cases"

    def ready(self):
        from approvals.models import ApprovalRequest
        from exceptions import handlers, notifications, selectors
        from exceptions.models import ExceptionCase
        from portal.audit.trails import link_trails
        from portal.notify.labels import register_labeller
        from portal.notify.models import Topic

        handlers.register()
        # An exported trail carries a write-off's case and the request it waits for together.
        request, case = ApprovalRequest._meta.label_lower, ExceptionCase._meta.label_lower
        link_trails(request, case, selectors.cases_linked_to_request, in_export_only=True)
        link_trails(case, request, selectors.request_linked_to_case, in_export_only=True)
        register_labeller(Topic.CASE, notifications.case_labels)
