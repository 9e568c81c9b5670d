from django.urls import path

from portal.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.home, name="home"),
    path("export/", views.export, name="export"),
    path("verify/", views.verify, name="verify"),
    path("trail/<str:object_type>/<str:object_id>/", views.trail, name="trail"),
]
