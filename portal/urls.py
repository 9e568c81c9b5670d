from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from portal import accounts
from portal.api.problems import unrouted
from portal.audit.views import published_key
from portal.inbox.metrics import metrics_view

# Pages keep Django's error pages; anything under /api/ answers a problem+json document.
handler404 = "portal.api.problems.handler404"
handler500 = "portal.api.problems.handler500"

admin.site.site_header = "Tollgate administration"
admin.site.site_title = "Tollgate"

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password_reset/<uidb64>/<token>/",
        accounts.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password_reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("audit/", include("portal.audit.urls")),
    path("approvals/", include("approvals.urls")),
    path("exceptions/", include("exceptions.urls")),
    path("mail/", include("portal.integrations.mail.urls")),
    path("dashboards/", include("portal.inbox.dashboard_urls")),
    path("manage/", include("approvals.manage_urls")),
    path("metrics", metrics_view, name="metrics"),
    path(".well-known/tollgate-audit-key", published_key, name="audit-key"),
    path("outbox/", include("portal.mailbox")),
    path("api/v1/", include("portal.api.urls")),
    # Any other address under /api/ (another version, a typo) answers a problem document too.
    re_path(r"^api/", unrouted),
    path("", include("portal.inbox.urls")),
]
