"""An authentication backend that answers `user.has_perm("sites.role_…", site)` correctly.

It replaces django-guardian's ObjectPermissionBackend for Site: guardian's backend reads the same
direct-FK rows but knows nothing of a membership's dates, so it would keep honouring an ended
membership.
"""

from django.contrib.auth.backends import BaseBackend

from sites import policies
from sites.models import Site
from sites.roles import role_of_codename


class SiteRoleBackend(BaseBackend):
    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        if not isinstance(obj, Site):
            return False
        app_label, _, codename = perm.partition(".")
        role = role_of_codename(codename)
        if app_label != "sites" or role is None:
            return False
        return policies.holds_role(user_obj, role, obj)
