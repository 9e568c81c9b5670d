from django.urls import path

from portal.audit import views

app_name = "audit"

urlpatterns = [
    path("trail/<str:object_type>/<str:object_id>/", views.trail, name="trail"),
]
