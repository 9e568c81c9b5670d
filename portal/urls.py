from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "Tollgate administration"
admin.site.site_title = "Tollgate"

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("audit/", include("portal.audit.urls")),
    path("api/v1/", include("portal.api.urls")),
    path("", include("portal.inbox.urls")),
]
