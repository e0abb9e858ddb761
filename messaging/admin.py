"""What staff see of messages: find one by number or provider id, read what happened to
it, read a conversation as its thread, and replay dead letters.

Every page here is read-only: the rows are written by the services, and a save from a
stale page would write old values over a worker's newer ones.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import storages
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from config.admin_readonly import ReadOnlyAdmin, ReadOnlyInline
from conversations.admin import ConversationAdmin, address_search_terms
from conversations.models import Conversation
from messaging.models import DeliveryAttempt, FailureReason, Message, MessageEvent
from messaging.services import message_cancel, message_replay
from messaging.services.transitions import CancelOutcome

THREAD_LIMIT = 200  # messages shown on a conversation page; the rest are in the message list


def attachment_href(url: str) -> str | None:
    """The URL if it is safe to link to (http or https), else None: an attachment URL is
    input from a client or a provider, and a `javascript:` link would run in the admin."""
    return url if isinstance(url, str) and urlsplit(url).scheme in {"http", "https"} else None


def attachment_links(urls) -> str:
    if not urls:
        return "-"
    return format_html_join(
        mark_safe("<br>"),
        "{}",
        (
            (
                format_html('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', href, url)
                if (href := attachment_href(url))
                else str(url),
            )
            for url in urls
        ),
    )


def recording_src(message: Message) -> str | None:
    """Where the admin's player gets a voice message's audio: our stored copy of a
    voicemail (streamed by the admin), else the provider's recording or the played URL,
    when it is a safe link."""
    if message.type != Message.Type.VOICE:
        return None
    if (message.call or {}).get("recording_file"):
        return reverse("admin:messaging_message_recording", args=[message.pk])
    return attachment_href(message.attachments[0]) if message.attachments else None


def message_number(term: str) -> int | None:
    number = term.strip().removeprefix("#")
    return int(number) if number.isdigit() and len(number) <= 18 else None


class DeadLetterFilter(admin.SimpleListFilter):
    """Failed messages, the ones an operator replays, one click away."""

    title = "dead letters"
    parameter_name = "dead_letter"

    def lookups(self, request, model_admin):
        return [
            ("all", "All dead letters"),
            (FailureReason.PERMANENT, "Refused by the provider"),
            (FailureReason.EXHAUSTED, "Retries exhausted"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset.filter(status=Message.Status.FAILED)
        if self.value() in FailureReason.values:
            return queryset.filter(status=Message.Status.FAILED, failure_reason=self.value())
        return queryset


class ProviderFilter(admin.SimpleListFilter):
    """The configured providers, without a DISTINCT over every message."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return [(name, name) for name in settings.PROVIDERS]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


class MessageEventInline(ReadOnlyInline):
    model = MessageEvent
    verbose_name_plural = "timeline"
    fields = ["created_at", "kind", "status", "detail"]
    ordering = ["created_at", "id"]


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["created_at", "provider", "outcome", "http_status", "latency", "provider_message_id", "error"]
    readonly_fields = ["latency"]
    ordering = ["created_at", "id"]

    @admin.display(description="latency")
    def latency(self, obj: DeliveryAttempt) -> str:
        return f"{obj.latency_ms} ms"


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "account",
        "direction",
        "type",
        "from_address",
        "to_address",
        "status",
        "provider",
        "provider_message_id",
        "attempts",
        "thread",
    ]
    list_display_links = ["id", "created_at"]
    list_select_related = ["account"]
    list_filter = [
        DeadLetterFilter,
        "status",
        "type",
        "direction",
        ProviderFilter,
        "needs_reconcile",
        "account",
        ("created_at", admin.DateFieldListFilter),
    ]
    # Searched by get_search_results, exact matches only: Django's substring search (or a
    # date hierarchy, which aggregates the whole table) reads every row, seconds at a
    # million messages. Listing a field here shows the search box.
    search_fields = ["provider_message_id"]
    search_help_text = (
        "Message number (#42 finds only that message), a provider message id, or a whole phone number "
        "(any spelling) or email address."
    )
    ordering = ["-id"]
    readonly_fields = [f.name for f in Message._meta.fields if f.name not in {"body", "attachments"}] + [
        "body_text",
        "attachment_list",
        "recording_player",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "account",
                    "conversation",
                    "direction",
                    "type",
                    "from_address",
                    "to_address",
                    "timestamp",
                ]
            },
        ),
        ("Content", {"fields": ["subject", "body_text", "attachment_list"]}),
        ("Call", {"fields": ["call", "duration", "answered_by", "recording_player"], "classes": ["collapse"]}),
        (
            "Delivery",
            {
                "fields": [
                    "status",
                    "provider",
                    "provider_message_id",
                    "attempts",
                    "failure_reason",
                    "error_code",
                    "last_error",
                    "needs_reconcile",
                ]
            },
        ),
        (
            "Times",
            {
                "fields": [
                    "created_at",
                    "updated_at",
                    "send_at",
                    "sent_at",
                    "delivered_at",
                    "failed_at",
                    "next_attempt_at",
                    "enqueued_at",
                    "lease_expires_at",
                ]
            },
        ),
    ]
    inlines = [MessageEventInline, DeliveryAttemptInline]
    actions = ["replay", "cancel_scheduled"]
    show_full_result_count = False
    change_form_template = "admin/messaging/message/change_form.html"

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("messaging.change_message")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("messaging.change_message")

    @admin.display(description="conversation", ordering="conversation_id")
    def thread(self, obj: Message) -> str:
        url = reverse("admin:conversations_conversation_change", args=[obj.conversation_id])
        return format_html('<a href="{}">#{}</a>', url, obj.conversation_id)

    @admin.display(description="body")
    def body_text(self, obj: Message) -> str:
        # Escaped, never rendered: an email body is HTML from a client or a sender.
        return format_html('<div class="message-body">{}</div>', obj.body) if obj.body else "-"

    @admin.display(description="attachments")
    def attachment_list(self, obj: Message) -> str:
        return attachment_links(obj.attachments)

    @admin.display(description="recording")
    def recording_player(self, obj: Message) -> str:
        src = recording_src(obj)
        return format_html('<audio controls preload="none" src="{}"></audio>', src) if src else "-"

    def get_search_results(self, request, queryset, search_term):
        """Exact matches, each an index lookup (PostgreSQL ORs them in one bitmap scan)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        number = message_number(term)
        if term.startswith("#"):
            return (queryset.filter(pk=number) if number is not None else queryset.none()), False
        match = Q(provider_message_id=term)
        if number is not None:
            match |= Q(pk=number)
        for address in address_search_terms(term):
            match |= Q(from_address=address) | Q(to_address=address)
        return queryset.filter(match), False

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay(self, request, queryset):
        replayed = sum(
            message_replay(message=m, actor=f"admin:{request.user}")
            for m in queryset.filter(status=Message.Status.FAILED)
        )
        skipped = queryset.count() - replayed
        self.message_user(request, f"Re-queued {replayed} failed message(s).")
        if skipped:
            self.message_user(request, f"Skipped {skipped} message(s) that are not dead letters.", messages.WARNING)

    @admin.action(description="Cancel selected scheduled messages", permissions=["cancel"])
    def cancel_scheduled(self, request, queryset):
        canceled = sum(
            message_cancel(message=m, actor=f"admin:{request.user}").outcome is CancelOutcome.CANCELED
            for m in queryset.filter(status=Message.Status.SCHEDULED)
        )
        skipped = queryset.count() - canceled
        self.message_user(request, f"Canceled {canceled} scheduled message(s).")
        if skipped:
            self.message_user(request, f"Skipped {skipped} message(s) that are not scheduled.", messages.WARNING)

    def get_urls(self):
        replay = self.admin_site.admin_view(require_POST(self.replay_view))
        recording = self.admin_site.admin_view(self.recording_view)
        return [
            path("<path:object_id>/replay/", replay, name="messaging_message_replay"),
            path("<path:object_id>/recording/", recording, name="messaging_message_recording"),
            *super().get_urls(),
        ]

    def recording_view(self, request: HttpRequest, object_id: str):
        """A voicemail's recording from our storage, for staff only: recordings are never
        public files (an S3 bucket stays private; the file system is not served)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        message = get_object_or_404(Message, pk=message_number(object_id) or 0, type=Message.Type.VOICE)
        name = (message.call or {}).get("recording_file")
        if not name:
            raise Http404("No stored recording.")
        content_type = message.call.get("recording_type") or "application/octet-stream"
        return FileResponse(storages["recordings"].open(name), content_type=content_type)

    def replay_view(self, request: HttpRequest, object_id: str):
        if not self.has_replay_permission(request):
            raise PermissionDenied
        message = get_object_or_404(Message, pk=message_number(object_id) or 0)
        if message_replay(message=message, actor=f"admin:{request.user}"):
            self.message_user(request, f"Re-queued message #{message.pk}.")
        else:
            self.message_user(request, f"Message #{message.pk} is not a dead letter.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:messaging_message_change", args=[message.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_replay": self.has_replay_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "message_id", "kind", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["=message__id"]
    readonly_fields = ["message", "kind", "status", "detail", "created_at"]
    raw_id_fields = ["message"]
    show_full_result_count = False


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "message_link", "provider", "outcome", "http_status", "latency_ms", "error"]
    list_filter = ["outcome", "provider", "http_status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=message__id"]
    search_help_text = "Message number (find a provider id on the messages page)."
    ordering = ["-id"]
    readonly_fields = [f.name for f in DeliveryAttempt._meta.fields]
    show_full_result_count = False

    @admin.display(description="message", ordering="message_id")
    def message_link(self, obj: DeliveryAttempt) -> str:
        url = reverse("admin:messaging_message_change", args=[obj.message_id])
        return format_html('<a href="{}">#{}</a>', url, obj.message_id)


# The conversation page shows its thread; conversations cannot import messaging, so
# the thread is attached here.
admin.site.unregister(Conversation)


@admin.register(Conversation)
class ConversationWithMessagesAdmin(ConversationAdmin):
    change_form_template = "admin/messaging/conversation_thread.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        conversation_id = message_number(object_id)
        latest = list(
            Message.objects.filter(conversation_id=conversation_id).order_by("-created_at", "-id")[:THREAD_LIMIT]
        )
        thread = [
            {
                "message": m,
                "url": reverse("admin:messaging_message_change", args=[m.pk]),
                "attachments": [{"url": url, "href": attachment_href(url)} for url in m.attachments or []],
                "recording": recording_src(m),
            }
            for m in reversed(latest)
        ]
        extra_context = {
            **(extra_context or {}),
            "thread": thread,
            "thread_limit": THREAD_LIMIT,
            "thread_truncated": len(latest) == THREAD_LIMIT,
            "thread_list_url": reverse("admin:messaging_message_changelist")
            + f"?conversation__id__exact={conversation_id}",
        }
        return super().change_view(request, object_id, form_url, extra_context)
