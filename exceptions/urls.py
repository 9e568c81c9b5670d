from django.urls import path

from exceptions import views

app_name = "exceptions"

urlpatterns = [
    path("", views.queues, name="queues"),
    path("assign/", views.assign_many, name="assign_many"),
    path("<int:case_id>/", views.detail, name="detail"),
    path("<int:case_id>/assign/", views.assign, name="assign"),
    path("<int:case_id>/start/", views.start, name="start"),
    path("<int:case_id>/resolve/", views.resolve, name="resolve"),
    path("<int:case_id>/dismiss/", views.dismiss, name="dismiss"),
    path("<int:case_id>/reopen/", views.reopen, name="reopen"),
]
