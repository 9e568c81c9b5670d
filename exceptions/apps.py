from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exception cases"

    def ready(self):
        from exceptions import handlers

        handlers.register()
