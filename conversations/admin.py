import contextlib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q

from config.admin_readonly import ReadOnlyAdmin, ReadOnlyInline
from conversations.addresses import AddressKind, address_kind, normalize_email, normalize_phone
from conversations.models import Account, ApiKey, Contact, ContactAddress, Conversation, OptOut, Sender, Suppression
from conversations.selectors import account_owns_address
from conversations.services import (
    api_key_create,
    api_key_revoke,
    contact_update,
    optout_add,
    optout_delete,
    suppression_add,
    suppression_delete,
)


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
    list_display = ["address", "account", "kind", "throughput", "created_at"]
    list_select_related = ["account"]
    search_fields = ["address"]
    list_filter = ["kind", "account"]


class ContactAddressForm(forms.ModelForm):
    class Meta:
        model = ContactAddress
        fields = ["address"]

    def clean_address(self) -> str:
        value = self.cleaned_data["address"].strip()
        return normalize_email(value) if "@" in value else normalize_phone(value)


class ContactAddressFormSet(forms.BaseInlineFormSet):
    """Addresses are checked as the API checks them (services/contacts.py): each once, not
    the account's own, not another hand-made contact's. The service then saves them."""

    def clean(self):
        super().clean()
        wanted = self.wanted()
        repeated = sorted({a for a in wanted if wanted.count(a) > 1})
        if repeated:
            raise ValidationError(f"Listed twice: {', '.join(repeated)}.")
        contact = self.instance
        if contact.account_id is None:
            return  # the contact's own form has errors; they are shown first
        senders = Sender.objects.filter(account_id=contact.account_id, address__in=wanted)
        if senders.exists():
            raise ValidationError(f"The account's own addresses: {', '.join(s.address for s in senders)}.")
        taken = (
            ContactAddress.objects.filter(account_id=contact.account_id, address__in=wanted, contact__automatic=False)
            .exclude(contact_id=contact.pk)
            .order_by("address")
        )
        if taken:
            held = ", ".join(f"{a.address} (contact {a.contact_id})" for a in taken)
            raise ValidationError(f"Held by other contacts: {held}. Merge them instead.")

    def wanted(self) -> list[str]:
        return [
            form.cleaned_data["address"]
            for form in self.forms
            if form.cleaned_data.get("address") and not form.cleaned_data.get("DELETE")
        ]


class ContactAddressInline(admin.TabularInline):
    model = ContactAddress
    form = ContactAddressForm
    formset = ContactAddressFormSet
    extra = 1
    fields = ["address"]


class ContactConversationInline(ReadOnlyInline):
    model = Conversation
    fields = ["conversation", "channel", "participant_a", "participant_b", "message_count", "last_message_at"]
    readonly_fields = fields
    ordering = ["-last_message_at", "-id"]
    show_change_link = True
    verbose_name_plural = "conversations"

    @admin.display(description="conversation")
    def conversation(self, obj: Conversation) -> str:
        return f"#{obj.pk}"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "account", "address_list", "automatic", "created_at"]
    list_select_related = ["account"]
    list_filter = ["automatic", "account"]
    search_fields = ["name", "addresses__address"]
    readonly_fields = ["automatic", "created_at"]
    fields = ["account", "name", "automatic", "created_at"]
    inlines = [ContactAddressInline, ContactConversationInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("addresses")

    @admin.display(description="addresses")
    def address_list(self, obj: Contact) -> str:
        return ", ".join(sorted(a.address for a in obj.addresses.all()))

    def get_readonly_fields(self, request, obj=None):
        # A contact's account is fixed once made: its addresses and conversations are that account's.
        return [*self.readonly_fields, "account"] if obj is not None else self.readonly_fields

    def save_related(self, request, form, formsets, change):
        """Addresses go through the service, which moves conversations with them."""
        for formset in formsets:
            if isinstance(formset, ContactAddressFormSet):
                wanted = formset.wanted()
                phones = [a for a in wanted if address_kind(a) is AddressKind.PHONE]
                emails = [a for a in wanted if address_kind(a) is AddressKind.EMAIL]
                contact_update(contact=form.instance, phone_numbers=phones, email_addresses=emails)
                # What formset.save() would have recorded, for the admin's change history.
                formset.new_objects = [f.instance for f in formset.extra_forms if f.has_changed()]
                formset.changed_objects = [
                    (f.instance, f.changed_data) for f in formset.initial_forms if f.has_changed()
                ]
                formset.deleted_objects = [f.instance for f in formset.deleted_forms]
            else:
                self.save_formset(request, form, formset, change)


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


# --- Consent --------------------------------------------------------------------------


class OptOutForm(forms.ModelForm):
    class Meta:
        model = OptOut
        fields = ["account", "sender", "address"]

    def clean(self):
        data = super().clean()
        for name in ("sender", "address"):
            if data.get(name):
                try:
                    data[name] = normalize_phone(data[name])
                except ValidationError as exc:
                    self.add_error(name, exc)
        account, sender = data.get("account"), data.get("sender")
        if account and sender and not account_owns_address(account=account, address=sender):
            self.add_error("sender", f"{account} does not own {sender}.")
        return data


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    """Opt-outs are added (as if the number had replied STOP) and deleted (as if START),
    never edited: the history a carrier may ask about is who opted out of what, and when."""

    form = OptOutForm
    list_display = ["address", "sender", "account", "source", "keyword", "created_at"]
    list_filter = ["source", "account"]
    search_fields = ["=address", "=sender"]
    readonly_fields = ["source", "keyword", "created_at"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        optout, _ = optout_add(account=obj.account, sender=obj.sender, address=obj.address, source=OptOut.Source.ADMIN)
        obj.pk, obj.created_at = optout.pk, optout.created_at

    # Deleted through the service, so the account's webhooks hear of it (optout.deleted).
    def delete_model(self, request, obj):
        optout_delete(optout=obj)

    def delete_queryset(self, request, queryset):
        for optout in queryset:
            optout_delete(optout=optout)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["account", "address"]

    def clean_address(self):
        try:
            return normalize_email(self.cleaned_data["address"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ["address", "account", "reason", "created_at"]
    list_filter = ["reason", "account"]
    search_fields = ["=address"]
    readonly_fields = ["reason", "detail", "created_at"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        suppression, _ = suppression_add(
            account=obj.account, address=obj.address, reason=Suppression.Reason.MANUAL, detail={"by": str(request.user)}
        )
        obj.pk, obj.created_at = suppression.pk, suppression.created_at

    def delete_model(self, request, obj):
        suppression_delete(suppression=obj)

    def delete_queryset(self, request, queryset):
        for suppression in queryset:
            suppression_delete(suppression=suppression)
