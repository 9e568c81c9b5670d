"""Tollgate's URLs plus one trivial signed-in page: the floor of the HTTP benchmarks.

Only the benchmark server loads this module (through tests.benchmarks.trivial_wsgi), so the
product's own URLs gain nothing.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal.urls import handler404, handler500
from portal.urls import urlpatterns as product_urlpatterns

TRIVIAL_PATH = "/bench/trivial/"
TRIVIAL_POST_PATH = "/bench/trivial-post/"


@login_required
def trivial(request):
    """The least a signed-in page can do: session, user and middleware, then a few bytes."""
    return HttpResponse(f"ok {request.user.pk}", content_type="text/plain")


@csrf_exempt
@require_POST
def trivial_post(request):
    """The least an unauthenticated JSON receiver can do: read the body, answer 202."""
    return JsonResponse({"status": "accepted", "bytes": len(request.body)}, status=202)


urlpatterns = [
    path(TRIVIAL_PATH.strip("/") + "/", trivial),
    path(TRIVIAL_POST_PATH.strip("/") + "/", trivial_post),
    *product_urlpatterns,
]

__all__ = ["handler404", "handler500", "urlpatterns"]
