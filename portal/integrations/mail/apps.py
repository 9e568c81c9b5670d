from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "portal.integrations.mail"
    label = "mail"
    verbose_name = "Mailboxes"
    default_auto_field = "django.db.models.BigAutoField"
