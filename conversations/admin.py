from django.contrib import admin, messages

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


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "channel", "account", "message_count", "last_message_at"]
    list_select_related = ["account"]
    list_filter = ["channel", "account"]
    search_fields = ["=id", "participant_a", "participant_b"]
    date_hierarchy = "last_message_at"
    readonly_fields = [f.name for f in Conversation._meta.fields]
    ordering = ["-last_message_at", "-id"]

    def has_add_permission(self, request):
        return False
