"""Tollgate's WSGI application serving tests.benchmarks.trivial_urls: the benchmark server.

Run by `harness.gunicorn(..., app="tests.benchmarks.trivial_wsgi:application")`; every product
page answers exactly as under portal.wsgi, with one trivial page beside them.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()
# Before the first request: Django reads the URL configuration per request.
settings.ROOT_URLCONF = "tests.benchmarks.trivial_urls"
