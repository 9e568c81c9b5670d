from django.apps import AppConfig


class OdooConfig(AppConfig):
    name = "portal.integrations.odoo"
    label = "odoo"
    verbose_name = "Odoo connection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from portal.core import erp
        from portal.integrations.odoo import handlers
        from portal.integrations.odoo.erp import OdooErp

        handlers.register()
        erp.connect(OdooErp())
