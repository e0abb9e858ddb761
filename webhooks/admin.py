from django.contrib import admin

from webhooks.models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "received_at", "provider", "kind", "outcome", "signed", "message_id"]
    list_filter = ["provider", "kind", "outcome", "signed", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=id", "event_id", "=message__id"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
