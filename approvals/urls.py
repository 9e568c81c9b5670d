from django.urls import path

from approvals import link_views, list_views, raise_views, views

app_name = "approvals"

urlpatterns = [
    path("", list_views.requests, name="list"),
    path("export.csv", list_views.export, name="export"),
    path("bulk/", views.bulk, name="bulk"),
    path("link/<str:token>/", link_views.email_link, name="email_link"),
    path("new/", raise_views.choose_kind, name="raise"),
    path("new/search/products/", raise_views.search_products, name="search_products"),
    path("new/search/<str:partner_kind>/", raise_views.search_partners, name="search_partners"),
    path("new/<str:kind>/", raise_views.raise_new, name="raise_new"),
    path("new/<str:kind>/route/", raise_views.route_preview, name="route_preview"),
    path("<int:request_id>/edit/", raise_views.edit_draft, name="edit"),
    path("<int:request_id>/revise/", raise_views.resubmit, name="resubmit"),
    path(
        "<int:request_id>/attachments/<int:attachment_id>/",
        raise_views.attachment_download,
        name="attachment",
    ),
    path("<int:request_id>/", views.detail, name="detail"),
    path("<int:request_id>/approve/", views.approve, name="approve"),
    path("<int:request_id>/reject/", views.reject, name="reject"),
    path("<int:request_id>/withdraw/", views.withdraw, name="withdraw"),
    path("<int:request_id>/delegate/", views.delegate, name="delegate"),
    path("<int:request_id>/retry/", views.retry_apply, name="retry"),
]
