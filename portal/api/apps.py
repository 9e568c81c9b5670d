from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "portal.api"
    label = "api"
    verbose_name = "API access"

    def ready(self):
        from django.conf import settings

        from portal.api.throttling import parse_rate

        # A malformed API_RATE_LIMIT stops start-up, naming the variable, not the first request.
        parse_rate(settings.API_RATE_LIMIT)
