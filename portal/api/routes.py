"""The REST resources under /api/v1/: one router, one registration per resource.

The basename is the first half of a token's action names (`approvals.approve`), so it is part
of the API: never rename one.
"""

from rest_framework.routers import SimpleRouter

from approvals.api import ApprovalRequestViewSet, PolicyViewSet
from exceptions.api import ExceptionCaseViewSet
from portal.audit.api import AuditEventViewSet, AuditExportViewSet
from sites.api import SiteViewSet

# A plain router: no browsable root and no `.json` twins, so one address per resource.
router = SimpleRouter(trailing_slash=True)
router.register("approvals", ApprovalRequestViewSet, basename="approvals")
router.register("exceptions", ExceptionCaseViewSet, basename="exceptions")
router.register("audit/events", AuditEventViewSet, basename="audit-events")
router.register("audit/export", AuditExportViewSet, basename="audit-export")
router.register("sites", SiteViewSet, basename="sites")
router.register("policies", PolicyViewSet, basename="policies")

urlpatterns = router.urls
