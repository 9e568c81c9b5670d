from django.urls import path

from approvals import list_views, views

app_name = "approvals"

urlpatterns = [
    path("", list_views.requests, name="list"),
    path("export.csv", list_views.export, name="export"),
    path("bulk/", views.bulk, name="bulk"),
    path("link/<str:token>/", views.email_link, name="email_link"),
    path("<int:request_id>/", views.detail, name="detail"),
    path("<int:request_id>/approve/", views.approve, name="approve"),
    path("<int:request_id>/reject/", views.reject, name="reject"),
    path("<int:request_id>/withdraw/", views.withdraw, name="withdraw"),
    path("<int:request_id>/delegate/", views.delegate, name="delegate"),
    path("<int:request_id>/retry/", views.retry_apply, name="retry"),
]
