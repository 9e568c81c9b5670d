from django.urls import path

from approvals import manage_views as views

app_name = "manage"

urlpatterns = [
    path("delegations/", views.delegations, name="delegations"),
    path(
        "delegations/<int:delegation_id>/revoke/",
        views.delegation_revoke,
        name="delegation_revoke",
    ),
    path("preferences/", views.preferences_page, name="preferences"),
    path("policies/", views.policies_page, name="policies"),
    path("policies/preview/", views.policy_preview, name="policy_preview"),
    path("policies/insight/", views.policy_insight, name="policy_insight"),
    path("policies/<int:policy_id>/", views.policy_detail, name="policy"),
    path("policies/<int:policy_id>/publish/", views.policy_publish, name="policy_publish"),
]
