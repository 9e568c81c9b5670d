"""The REST resources under /api/v1/: one router, one registration per resource."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter(trailing_slash=True)

urlpatterns = router.urls
