from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.addresses import AddressKind, address_kind
from conversations.fields import EmailAddressField, PhoneField, StringField
from conversations.models import Contact, Conversation, OptOut, Suppression


class LastMessageSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="last_message_at")
    preview = serializers.CharField(source="last_message_preview")
    direction = serializers.CharField(source="last_message_direction")
    type = serializers.CharField(source="last_message_type")


class ContactRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)


class ConversationSerializer(serializers.ModelSerializer):
    participants = serializers.ListField(child=serializers.CharField(), read_only=True)
    contact = serializers.SerializerMethodField()
    last_message = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "channel",
            "participants",
            "contact_id",
            "contact",
            "message_count",
            "last_message",
            "created_at",
        ]

    @extend_schema_field(ContactRefSerializer(allow_null=True, help_text="The contact behind the other address."))
    def get_contact(self, conversation: Conversation) -> dict | None:
        contact = conversation.contact
        return None if contact is None else {"id": contact.pk, "name": contact.name}

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, conversation: Conversation) -> dict | None:
        if conversation.last_message_at is None:
            return None
        # Built directly: a nested serializer per row cost most of a list page's time.
        return {
            "at": _DATETIME.to_representation(conversation.last_message_at),
            "preview": conversation.last_message_preview,
            "direction": conversation.last_message_direction,
            "type": conversation.last_message_type,
        }


_DATETIME = serializers.DateTimeField()


# --- Contacts -------------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    phone_numbers = serializers.SerializerMethodField()
    email_addresses = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = ["id", "name", "phone_numbers", "email_addresses", "automatic", "created_at"]
        extra_kwargs = {
            "automatic": {
                "help_text": "Made by threading for an address no contact had (no name). Creating a contact "
                "with that address, or adding it to one, takes it and its conversations from this one, which "
                "is then deleted. Any change through the API makes a contact no longer automatic."
            }
        }

    @extend_schema_field(serializers.ListField(child=PhoneField()))
    def get_phone_numbers(self, contact: Contact) -> list[str]:
        return [a.address for a in contact.addresses.all() if address_kind(a.address) is AddressKind.PHONE]

    @extend_schema_field(serializers.ListField(child=EmailAddressField()))
    def get_email_addresses(self, contact: Contact) -> list[str]:
        return [a.address for a in contact.addresses.all() if address_kind(a.address) is AddressKind.EMAIL]


class _AddressListField(serializers.ListField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", settings.CONTACT_MAX_ADDRESSES)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise serializers.ValidationError([f"{v} is listed twice" for v in repeated])
        return values


class ContactWriteSerializer(serializers.Serializer):
    """The fields a client writes. Each list is the whole set of that kind: on PATCH, a list
    given replaces the contact's numbers (or addresses), one left out keeps them."""

    name = StringField(max_length=200, allow_blank=True, required=False)
    phone_numbers = _AddressListField(
        child=PhoneField(), required=False, help_text="E.164 numbers; other spellings are normalised as on sends."
    )
    email_addresses = _AddressListField(
        child=EmailAddressField(), required=False, help_text="Email addresses; stored lower-cased."
    )


class ContactUpdateSerializer(ContactWriteSerializer):
    def validate(self, data):
        if not data:
            raise serializers.ValidationError("Give at least one of name, phone_numbers, email_addresses.")
        return data


class ContactMergeSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="The contact merged into this one: its addresses and conversations move, then it is deleted.",
    )


# --- Consent --------------------------------------------------------------------------


class OptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OptOut
        fields = ["id", "sender", "address", "source", "keyword", "created_at"]


class OptOutWriteSerializer(serializers.Serializer):
    sender = PhoneField(help_text="One of the account's numbers.")
    address = PhoneField(help_text="The number opted out of messages from `sender`.")


class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "address", "reason", "detail", "created_at"]


class SuppressionWriteSerializer(serializers.Serializer):
    address = EmailAddressField(help_text="An email address the account will not write to.")
