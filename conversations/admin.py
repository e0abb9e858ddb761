import contextlib

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q

from config.admin_readonly import ReadOnlyAdmin
from conversations.addresses import normalize_phone
from conversations.models import Account, ApiKey, Contact, ContactAddress, Conversation, Sender
from conversations.services import api_key_create, api_key_revoke


class SenderInline(admin.TabularInline):
    model = Sender
    extra = 0


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "is_development", "created_at"]
    search_fields = ["name", "senders__address"]
    inlines = [SenderInline]
    actions = ["create_api_key"]

    @admin.action(description="Create an API key (shown once)")
    def create_api_key(self, request, queryset):
        for account in queryset:
            _, raw_key = api_key_create(account=account, name=f"created by {request.user}")
            self.message_user(
                request, f"New key for {account}: {raw_key} — copy it now, it is not shown again.", messages.WARNING
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "account", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["account", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "account__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["account", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are made by the Account action, which shows the secret once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    list_display = ["address", "account", "created_at"]
    list_select_related = ["account"]
    search_fields = ["address"]
    list_filter = ["account"]


class ContactAddressInline(admin.TabularInline):
    model = ContactAddress
    extra = 0
    fields = ["address"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "account", "created_at"]
    list_select_related = ["account"]
    search_fields = ["name", "addresses__address"]
    inlines = [ContactAddressInline]

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            instance.account_id = form.instance.account_id
            instance.save()
        formset.save_m2m()
        for obj in formset.deleted_objects:
            obj.delete()


def address_search_terms(term: str) -> list[str]:
    """The stored spellings a staff member may mean by `term`: `+1 (201) 555-0100` and
    `12015550100` find `+12015550100`, as the API would have normalised them."""
    term = term.strip()
    candidates = [term] if term.startswith("+") else []
    digits = "".join(c for c in term if c.isdigit())
    if not term.startswith("+") and len(digits) >= 8 and not set(term) - set("0123456789 ()-."):
        candidates.append("+" + digits)
    found = []
    for candidate in candidates:
        with contextlib.suppress(ValidationError):
            found.append(normalize_phone(candidate))
    if "@" in term and " " not in term:
        found.append(term.lower())
    return found


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    """Read-only: the last-message fields and the count are kept by the services, and a
    save from a stale page would write old values back."""

    list_display = [
        "id",
        "__str__",
        "channel",
        "account",
        "contact",
        "message_count",
        "last_message_at",
        "last_message",
    ]
    list_display_links = ["id", "__str__"]
    list_select_related = ["account", "contact"]
    list_filter = ["channel", "account", "last_message_direction", "last_message_type"]
    search_fields = ["participant_a", "participant_b", "contact__name"]
    search_help_text = "Conversation number (#12), a participant's phone number or email, or a contact's name."
    date_hierarchy = "last_message_at"
    readonly_fields = [f.name for f in Conversation._meta.fields]
    fieldsets = [
        (None, {"fields": ["id", "account", "channel", ("participant_a", "participant_b"), "contact", "created_at"]}),
        (
            "Summary",
            {
                "classes": ["collapse"],
                "fields": [
                    "message_count",
                    "last_message_at",
                    "last_message_preview",
                    "last_message_direction",
                    "last_message_type",
                ],
            },
        ),
    ]
    ordering = ["-last_message_at", "-id"]
    show_full_result_count = False

    @admin.display(description="last message")
    def last_message(self, obj: Conversation) -> str:
        arrow = {"inbound": "←", "outbound": "→"}.get(obj.last_message_direction, "")
        return f"{arrow} {obj.last_message_preview}".strip()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        number = term.removeprefix("#")
        if term.startswith("#"):
            return queryset.filter(pk=int(number)) if number.isdigit() and len(number) <= 18 else queryset.none(), False
        results, may_have_duplicates = super().get_search_results(request, queryset, term)
        extra = Q()
        if number.isdigit() and len(number) <= 18:
            extra |= Q(pk=int(number))
        for address in address_search_terms(term):
            extra |= Q(participant_a=address) | Q(participant_b=address)
        if extra:
            results = results | queryset.filter(extra)
        return results, may_have_duplicates
