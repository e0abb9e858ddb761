from datetime import UTC, datetime

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from messaging.fields import (
    AttachmentsField,
    AttachmentUrlField,
    EmailAddressField,
    FromFieldMixin,
    PhoneField,
    SendAtField,
    StrictBooleanField,
    StringField,
    check_email_message,
    check_phone_message,
    fast_validator,
)
from messaging.models import DeliveryAttempt, Encoding, Message, MessageEvent
from messaging.segments import message_segmentation, smart_encode
from messaging.services import NewMessage
from providers.base import AnsweredBy, CallMode, HumanAnswer

EMAIL_MAX_BODY = 100_000
#: Twilio's limit on the text of one <Say>
SAY_MAX = 4096
HUMAN_SAY_MAX = 1000


SMART_ENCODING_HELP = (
    "Replace look-alike Unicode (curly quotes, long dashes, non-breaking and other spaces, the ellipsis, "
    "fullwidth forms: Twilio's Smart Encoding table) with GSM-7 equivalents before storing the body, so "
    "fewer segments are sent. The stored and sent body is the replaced one."
)


class SmsSendSerializer(FromFieldMixin, serializers.Serializer):
    from_ = PhoneField(help_text="One of the account's phone numbers, E.164.")
    to = PhoneField(help_text="The recipient, E.164.")
    type = serializers.ChoiceField(choices=["sms", "mms"], default="sms")
    body = StringField(max_length=settings.SMS_MAX_BODY, allow_blank=True, trim_whitespace=False, default="")
    attachments = AttachmentsField(help_text="http(s) URLs of media; an MMS needs at least one.")
    timestamp = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO-8601; naive times are UTC.")
    smart_encoding = StrictBooleanField(default=False, help_text=SMART_ENCODING_HELP)
    send_at = SendAtField()

    def validate(self, data):
        if data.get("smart_encoding"):
            data["body"] = smart_encode(data["body"])
            if len(data["body"]) > settings.SMS_MAX_BODY:  # "…" became "...": longer than allowed
                limit = settings.SMS_MAX_BODY
                raise serializers.ValidationError({"body": [f"longer than {limit} characters after smart encoding"]})
        return check_phone_message(data)

    @staticmethod
    def new_message(data: dict) -> NewMessage:
        """The message `data` (as validated) describes."""
        return NewMessage(
            type=data["type"],
            from_address=data["from"],
            to_address=data["to"],
            body=data["body"],
            attachments=data["attachments"],
            timestamp=data.get("timestamp"),
            send_at=data.get("send_at"),
        )


class EmailSendSerializer(FromFieldMixin, serializers.Serializer):
    from_ = EmailAddressField(help_text="One of the account's addresses (or an address in its domain).")
    to = EmailAddressField()
    subject = StringField(max_length=998, allow_blank=True, default="")
    body = StringField(max_length=EMAIL_MAX_BODY, trim_whitespace=False, help_text="Text or HTML.")
    attachments = AttachmentsField(help_text="http(s) URLs; sent as links.")
    timestamp = serializers.DateTimeField(required=False, allow_null=True)
    send_at = SendAtField()

    def validate(self, data):
        return check_email_message(data)

    @staticmethod
    def new_message(data: dict) -> NewMessage:
        """The message `data` (as validated) describes."""
        return NewMessage(
            type="email",
            from_address=data["from"],
            to_address=data["to"],
            body=data["body"],
            attachments=data["attachments"],
            timestamp=data.get("timestamp"),
            subject=data["subject"],
            send_at=data.get("send_at"),
        )


class VoiceSendSerializer(FromFieldMixin, serializers.Serializer):
    from_ = PhoneField(help_text="One of the account's phone numbers, E.164: the number the call comes from.")
    to = PhoneField(help_text="Who is called, E.164.")
    mode = serializers.ChoiceField(
        choices=[m.value for m in CallMode],
        default=CallMode.CALL.value,
        help_text=(
            "`call`: say or play it to whoever answers. `voicemail_drop`: wait for the answering machine's "
            "beep and leave it there; `human` says what to do if a person answers."
        ),
    )
    say = StringField(max_length=SAY_MAX, required=False, help_text="Text to speak. Give `say` or `play`.")
    play = AttachmentUrlField(required=False, help_text="An http(s) URL of audio (MP3 or WAV) to play instead.")
    voice = StringField(
        max_length=64,
        required=False,
        default="",
        validators=[RegexValidator(r"^[A-Za-z0-9._-]+$", "letters, digits, dots, dashes, underscores")],
        help_text="The text-to-speech voice for `say` (e.g. `alice`, `Polly.Joanna`); the provider's default if empty.",
    )
    language = StringField(
        max_length=16,
        required=False,
        default="",
        validators=[RegexValidator(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$", "a language tag such as en-US")],
        help_text="The language of `say` (e.g. `en-US`).",
    )
    human = serializers.ChoiceField(
        choices=[h.value for h in HumanAnswer],
        required=False,
        help_text=(
            "voicemail_drop only: if a person answers, `same` (default) says or plays the same message, "
            "`message` says `human_say`, `hangup` hangs up (the message ends `undelivered`)."
        ),
    )
    human_say = StringField(
        max_length=HUMAN_SAY_MAX, required=False, default="", help_text="What `human: message` says to a person."
    )
    timestamp = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO-8601; naive times are UTC.")
    send_at = SendAtField()

    def validate(self, data):
        errors = {}
        if ("say" in data) == ("play" in data):
            errors["say"] = ["give say (text to speak) or play (an audio URL), one of them"]
        if "play" in data and (data["voice"] or data["language"]):
            errors["voice" if data["voice"] else "language"] = ["applies to say only"]
        drop = data["mode"] == CallMode.VOICEMAIL_DROP
        if "human" in data and not drop:
            errors["human"] = ["applies to mode voicemail_drop only"]
        human = data.get("human", HumanAnswer.SAME.value if drop else "")
        if human == HumanAnswer.MESSAGE and not data["human_say"].strip():
            errors["human_say"] = ["human: message needs the text to say"]
        if data["human_say"] and human != HumanAnswer.MESSAGE:
            errors["human_say"] = ["applies to human: message only"]
        if data["from"] == data["to"]:
            errors["to"] = ["must differ from from"]
        if errors:
            raise serializers.ValidationError(errors)
        return data | {"human": human}

    @staticmethod
    def new_message(data: dict) -> NewMessage:
        """The message `data` (as validated) describes: `say` is its body, `play` its attachment."""
        call = {"mode": data["mode"], "voice": data["voice"], "language": data["language"]}
        if data["mode"] == CallMode.VOICEMAIL_DROP:
            call |= {"human": data["human"], "human_say": data["human_say"]}
        return NewMessage(
            type="voice",
            from_address=data["from"],
            to_address=data["to"],
            body=data.get("say", ""),
            attachments=[data["play"]] if "play" in data else [],
            timestamp=data.get("timestamp"),
            call=call,
            send_at=data.get("send_at"),
        )


class BatchItemSerializer(FromFieldMixin, serializers.Serializer):
    """One message of a batch, as documented; each is validated by the serializer of its type."""

    type = serializers.ChoiceField(choices=["sms", "mms", "email"])
    from_ = StringField(help_text="As for POST /api/messages/sms or /email.")
    to = StringField()
    subject = StringField(required=False, help_text="Email only.")
    body = StringField(required=False)
    attachments = serializers.ListField(child=serializers.URLField(), required=False, allow_null=True)
    timestamp = serializers.DateTimeField(required=False, allow_null=True)
    smart_encoding = StrictBooleanField(required=False, help_text="SMS/MMS only. " + SMART_ENCODING_HELP)
    send_at = SendAtField()


class _ParsedJson(serializers.Field):
    """Any value of a parsed JSON body, taken as it is (each item is validated on its own
    below). DRF's JSONField would serialise every item again to prove it is JSON."""

    def to_internal_value(self, data):
        return data


class BatchSendSerializer(serializers.Serializer):
    messages = serializers.ListField(child=_ParsedJson(), min_length=1, max_length=settings.BATCH_MAX_MESSAGES)

    def new_messages(self) -> list[NewMessage | dict]:
        """Each item as a NewMessage, or the error fields that refuse it: validated by the
        single sends' serializers, compiled (fast_validation: their rules, their errors),
        each address normalised once per batch."""
        memo = {}
        return [_batch_item(item, memo) for item in self.validated_data["messages"]]


class BatchSendDocumentation(serializers.Serializer):
    messages = serializers.ListField(
        child=BatchItemSerializer(), min_length=1, max_length=settings.BATCH_MAX_MESSAGES, help_text="Each sent alone."
    )


def _batch_item(item, memo: dict) -> NewMessage | dict:
    if not isinstance(item, dict):
        return {"non_field_errors": ["Each message must be a JSON object."]}
    kind = item.get("type")
    if kind not in ("sms", "mms", "email"):
        return {"type": ["Must be sms, mms or email."]}
    serializer_class = EmailSendSerializer if kind == "email" else SmsSendSerializer
    payload = {k: v for k, v in item.items() if k != "type"} if kind == "email" else item
    try:
        data = fast_validator(serializer_class)(payload, memo)
    except serializers.ValidationError as exc:
        return exc.detail
    return serializer_class.new_message(data)


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request.")
    id = serializers.IntegerField(required=False, help_text="The queued message, when accepted.")
    conversation_id = serializers.IntegerField(required=False)
    status = serializers.CharField(required=False, help_text="queued, or scheduled (with send_at).")
    encoding = serializers.ChoiceField(
        choices=Encoding.choices, required=False, allow_null=True, help_text="SMS/MMS; null for email."
    )
    segments = serializers.IntegerField(required=False, allow_null=True, help_text="SMS/MMS; null for email.")
    error = serializers.DictField(required=False, help_text="Why the item was refused: code, message, fields.")


class BatchResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BatchResultSerializer(many=True)


class CallSerializer(serializers.Serializer):
    """A voice message's call (null for other types)."""

    mode = serializers.ChoiceField(
        choices=[*(m.value for m in CallMode), "voicemail"], help_text="call or voicemail_drop; inbound: voicemail"
    )
    voice = serializers.CharField(allow_blank=True)
    language = serializers.CharField(allow_blank=True)
    human = serializers.ChoiceField(
        choices=[*(h.value for h in HumanAnswer), ""], help_text="A drop's behaviour when a person answers."
    )
    human_say = serializers.CharField(allow_blank=True)
    duration = serializers.IntegerField(
        allow_null=True, help_text="Seconds: the call's once it ended, or the voicemail's."
    )
    answered_by = serializers.ChoiceField(
        choices=[*(a.value for a in AnsweredBy), ""], help_text="Who answered an outbound call, when detected."
    )
    recording_stored = serializers.BooleanField(help_text="A voicemail's recording was copied into our storage.")


def call_representation(message) -> dict | None:
    if message.type != "voice":
        return None
    options = message.call or {}
    return {
        "mode": options.get("mode", CallMode.CALL.value),
        "voice": options.get("voice", ""),
        "language": options.get("language", ""),
        "human": options.get("human", ""),
        "human_say": options.get("human_say", ""),
        "duration": message.duration,
        "answered_by": message.answered_by,
        "recording_stored": bool(options.get("recording_file")),
    }


@extend_schema_serializer(component_name="DeliveryError")
class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)


class MessageSerializer(FromFieldMixin, serializers.ModelSerializer):
    from_ = serializers.CharField(source="from_address")
    to = serializers.CharField(source="to_address")
    encoding = serializers.SerializerMethodField()
    segments = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    call = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "direction",
            "type",
            "from_",
            "to",
            "subject",
            "body",
            "attachments",
            "encoding",
            "segments",
            "timestamp",
            "send_at",
            "status",
            "provider",
            "provider_message_id",
            "attempts",
            "error",
            "call",
            "created_at",
            "updated_at",
            "sent_at",
            "delivered_at",
            "failed_at",
        ]

    @extend_schema_field(
        serializers.ChoiceField(
            choices=Encoding.choices,
            allow_null=True,
            help_text="SMS/MMS: GSM-7 (160 characters, 153 a part) or UCS-2 (70, 67); null for email.",
        )
    )
    def get_encoding(self, message: Message) -> str | None:
        return _segmentation(message)[0] or None

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True,
            min_value=0,
            help_text="SMS/MMS: the segments carriers bill for the text, fixed when the message was stored; "
            "null for email.",
        )
    )
    def get_segments(self, message: Message) -> int | None:
        return _segmentation(message)[1]

    @extend_schema_field(CallSerializer(allow_null=True))
    def get_call(self, message: Message) -> dict | None:
        return call_representation(message)

    @extend_schema_field(ErrorSerializer(allow_null=True))
    def get_error(self, message: Message) -> dict | None:
        if not (message.last_error or message.error_code):
            return None
        return {"code": message.error_code, "message": message.last_error, "reason": message.failure_reason}

    def to_representation(self, message: Message) -> dict:
        """What DRF's field-by-field to_representation gives (a test holds them equal),
        written out: a page of 50 messages spent most of its time in the generic walk.
        `message` is a Message or any object with its fields as attributes (a page's
        rows, see MESSAGE_FIELDS)."""
        encoding, segments = _segmentation(message)
        return {
            "id": message.id,
            "conversation_id": message.conversation_id,
            "direction": message.direction,
            "type": message.type,
            "from": message.from_address,
            "to": message.to_address,
            "subject": message.subject,
            "body": message.body,
            "attachments": message.attachments,
            "encoding": encoding or None,
            "segments": segments,
            "timestamp": _datetime(message.timestamp),
            "send_at": _datetime(message.send_at),
            "status": message.status,
            "provider": message.provider,
            "provider_message_id": message.provider_message_id,
            "attempts": message.attempts,
            "error": self.get_error(message),
            "call": call_representation(message),
            "created_at": _datetime(message.created_at),
            "updated_at": _datetime(message.updated_at),
            "sent_at": _datetime(message.sent_at),
            "delivered_at": _datetime(message.delivered_at),
            "failed_at": _datetime(message.failed_at),
        }


# The columns a message's representation reads: a page selects these alone.
MESSAGE_FIELDS = (
    "id",
    "conversation_id",
    "direction",
    "type",
    "from_address",
    "to_address",
    "subject",
    "body",
    "attachments",
    "encoding",
    "segments",
    "timestamp",
    "send_at",
    "status",
    "provider",
    "provider_message_id",
    "attempts",
    "error_code",
    "last_error",
    "failure_reason",
    "call",
    "duration",
    "answered_by",
    "created_at",
    "updated_at",
    "sent_at",
    "delivered_at",
    "failed_at",
)


def _segmentation(message: Message) -> tuple[str, int | None]:
    if message.segments is None and message.type in (Message.Type.SMS, Message.Type.MMS):
        # Stored before messages kept their count: the same rules give the same answer.
        return message_segmentation(message.type, message.body)
    return message.encoding, message.segments


def _datetime(value: datetime | None) -> str | None:
    """DRF's ISO 8601 for an aware time in UTC (TIME_ZONE), `Z` for +00:00, without its
    per-call lookup of the current time zone (five times per message in a page)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class MessageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageEvent
        fields = ["id", "kind", "status", "detail", "created_at"]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "id",
            "provider",
            "outcome",
            "http_status",
            "provider_message_id",
            "error",
            "latency_ms",
            "created_at",
        ]


class MessageDetailSerializer(MessageSerializer):
    events = MessageEventSerializer(many=True, read_only=True)
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "events", "delivery_attempts"]

    def to_representation(self, message: Message) -> dict:
        return super().to_representation(message) | {
            "events": MessageEventSerializer(message.events.all(), many=True).data,
            "delivery_attempts": DeliveryAttemptSerializer(message.delivery_attempts.all(), many=True).data,
        }
