from django.apps import AppConfig


class OdooConfig(AppConfig):
    name = "portal.integrations.odoo"
    label = "odoo"
    verbose_name = "Odoo connection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from portal.integrations.odoo import handlers

        handlers.register()
