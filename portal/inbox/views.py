from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from sites.roles import MEANINGS
from sites.selectors import memberships_in_force, site_list_for_user


@login_required
def home(request):
    """The signed-in person's starting page: the sites in their reach and the roles behind it."""
    memberships = list(memberships_in_force(request.user))
    return render(
        request,
        "inbox/home.html",
        {
            "sites": site_list_for_user(request.user),
            "memberships": [(m, MEANINGS[m.role]) for m in memberships],
        },
    )
