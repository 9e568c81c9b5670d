"""People, groups and sign-in records in the admin, in place of Django's and django-axes' own.

Django's UserAdmin shows every account to anyone holding `auth.view_user` and lets anyone holding
`auth.change_user` tick `is_superuser` on themself. Here a staff member who is not a superuser
sees the people they deal with as an administrator (sites.policies.people_seen_by), changes the
account of only those whose every site they administer (or their own), and never changes what
makes someone staff or superuser or what permissions they hold: those fields are read-only to
them and kept as stored whatever a request says. Groups carry permissions and the sign-in
records name every account and address in the company: superusers only.
"""

from axes import admin as axes_admin
from axes.conf import settings as axes_settings
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q

from sites.admin_scope import ScopedAdmin, SuperuserOnlyAdmin, is_superuser
from sites.policies import may_change_account, people_seen_by

User = get_user_model()

# What makes someone staff, a superuser, or the holder of Django permissions.
PRIVILEGES = ("is_superuser", "is_staff", "groups", "user_permissions")

for _model in (User, Group, AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(User)
class UserAdmin(ScopedAdmin, auth_admin.UserAdmin):
    def scope(self, request) -> Q:
        return Q(pk__in=people_seen_by(request.user).values("pk"))

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if is_superuser(request):
            return filters
        return [entry for entry in filters if entry != "groups" and entry[0] != "groups"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not is_superuser(request):
            fields += [name for name in PRIVILEGES if name not in fields]
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or may_change_account(request.user, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Accounts are deactivated, not deleted, by anyone but a superuser.
        return is_superuser(request) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if not is_superuser(request):
            # Read-only fields are not in the form; this holds even if a form slipped them in.
            stored = User.objects.filter(pk=obj.pk).first() if change else None
            obj.is_superuser = bool(stored and stored.is_superuser)
            obj.is_staff = bool(stored and stored.is_staff)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        if not is_superuser(request):
            for name in ("groups", "user_permissions"):
                form.cleaned_data.pop(name, None)
        super().save_related(request, form, formsets, change)


@admin.register(Group)
class GroupAdmin(SuperuserOnlyAdmin, auth_admin.GroupAdmin):
    pass


if axes_settings.AXES_ENABLE_ADMIN:

    @admin.register(AccessAttempt)
    class AccessAttemptAdmin(SuperuserOnlyAdmin, axes_admin.AccessAttemptAdmin):
        pass

    @admin.register(AccessLog)
    class AccessLogAdmin(SuperuserOnlyAdmin, axes_admin.AccessLogAdmin):
        pass

    @admin.register(AccessFailureLog)
    class AccessFailureLogAdmin(SuperuserOnlyAdmin, axes_admin.AccessFailureLogAdmin):
        pass
