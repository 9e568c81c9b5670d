from django.urls import path

from portal.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.home, name="home"),
    path("export/", views.export, name="export"),
    path("verify/", views.verify, name="verify"),
    path("verify/status/", views.verify_status, name="verify-status"),
    path("trail/<str:object_type>/<str:object_id>/", views.trail, name="trail"),
    path(
        "trail/<str:object_type>/<str:object_id>/export/",
        views.trail_export,
        name="trail-export",
    ),
]
