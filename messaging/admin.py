from django.contrib import admin

from conversations.admin import ConversationAdmin
from conversations.models import Conversation
from messaging.models import DeliveryAttempt, Message, MessageEvent
from messaging.services import message_replay


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MessageEventInline(ReadOnlyInline):
    model = MessageEvent
    fields = ["created_at", "kind", "status", "detail"]
    ordering = ["id"]


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["created_at", "provider", "outcome", "http_status", "latency_ms", "provider_message_id", "error"]
    ordering = ["id"]


class ConversationMessageInline(ReadOnlyInline):
    model = Message
    fields = ["created_at", "direction", "type", "from_address", "to_address", "body", "status"]
    ordering = ["created_at", "id"]
    show_change_link = True


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "direction",
        "type",
        "from_address",
        "to_address",
        "status",
        "provider",
        "provider_message_id",
        "attempts",
    ]
    list_filter = ["status", "type", "direction", "provider", "failure_reason"]
    search_fields = ["=id", "from_address", "to_address", "provider_message_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Message._meta.fields]
    inlines = [DeliveryAttemptInline, MessageEventInline]
    actions = ["replay"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay selected dead letters")
    def replay(self, request, queryset):
        replayed = sum(
            message_replay(message=m, actor=f"admin:{request.user}")
            for m in queryset.filter(status=Message.Status.FAILED)
        )
        self.message_user(request, f"Re-queued {replayed} failed message(s).")


@admin.register(MessageEvent)
class MessageEventAdmin(admin.ModelAdmin):
    list_display = ["id", "message_id", "kind", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["=message__id"]
    readonly_fields = ["message", "kind", "status", "detail", "created_at"]
    raw_id_fields = ["message"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The conversation page shows its thread; conversations cannot import messaging, so
# the inline is attached here.
admin.site.unregister(Conversation)


@admin.register(Conversation)
class ConversationWithMessagesAdmin(ConversationAdmin):
    inlines = [ConversationMessageInline]
