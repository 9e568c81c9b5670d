"""Administrators manage senders and rotate their secrets; deliveries are read-only here.

A secret is typed once when added and never displayed again, not even to administrators.
"""

from django import forms
from django.contrib import admin, messages

from portal.webhooks import services
from portal.webhooks.models import InboundDelivery, WebhookSecret, WebhookSource


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "active"]
    list_filter = ["active"]


class SecretAddForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        help_text="whsec_ followed by base64; shown nowhere after saving.",
    )

    class Meta:
        model = WebhookSecret
        fields = ["source", "secret"]


@admin.register(WebhookSecret)
class WebhookSecretAdmin(admin.ModelAdmin):
    list_display = ["__str__", "source", "created_at", "retired_at"]
    list_filter = ["source", "retired_at"]
    actions = ["retire"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SecretAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["source", "secret"] if obj is None else ["source", "created_at", "retired_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["source", "created_at", "retired_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            saved = services.webhook_secret_add(
                actor=request.user, source=obj.source, secret=form.cleaned_data["secret"]
            )
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retire the selected secrets")
    def retire(self, request, queryset):
        for row in queryset:
            services.webhook_secret_retire(actor=request.user, secret_id=row.pk)


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "source", "event_type", "status", "received_at", "case"]
    list_filter = ["status", "source", "event_type"]
    search_fields = ["webhook_id", "body"]
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
