from django.urls import path

from portal.integrations.mail import views

app_name = "mail"

urlpatterns = [
    path("triage/", views.triage, name="triage"),
    path("triage/<int:item_id>/", views.item, name="item"),
    path("triage/<int:item_id>/confirm/", views.confirm, name="confirm"),
    path("triage/<int:item_id>/dismiss/", views.dismiss, name="dismiss"),
]
