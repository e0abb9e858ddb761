from django.contrib import admin

from config.admin_readonly import ReadOnlyAdmin
from webhooks.models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "provider", "kind", "outcome", "signed", "message_id"]
    list_filter = ["provider", "kind", "outcome", "signed", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=id", "event_id", "=message__id"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    show_full_result_count = False
