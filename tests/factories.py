import base64

import factory
from django.conf import settings
from django.utils import timezone

from conversations.addresses import participant_pair
from conversations.models import Account, Conversation, Sender
from messaging.models import Message


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"account-{n}")


class SenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sender

    account = factory.SubFactory(AccountFactory)
    address = factory.Sequence(lambda n: f"+1201555{n:04d}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    class Params:
        a = factory.Sequence(lambda n: f"+1201666{n:04d}")
        b = factory.Sequence(lambda n: f"+1804555{n:04d}")

    account = factory.SubFactory(AccountFactory)
    channel = Conversation.Channel.PHONE
    participant_a = factory.LazyAttribute(lambda o: participant_pair(o.a, o.b)[0])
    participant_b = factory.LazyAttribute(lambda o: participant_pair(o.a, o.b)[1])
    created_at = factory.LazyFunction(timezone.now)
    last_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    account = factory.SelfAttribute("conversation.account")
    direction = Message.Direction.OUTBOUND
    type = Message.Type.SMS
    from_address = factory.SelfAttribute("conversation.participant_a")
    to_address = factory.SelfAttribute("conversation.participant_b")
    body = "hello"
    status = Message.Status.QUEUED
    next_attempt_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


# Request bodies of the assignment's contract, shared by the API and end-to-end tests.

SMS = {
    "from": "+12016661234",
    "to": "+18045551234",
    "type": "sms",
    "body": "Hello! This is a test SMS message.",
    "attachments": None,
    "timestamp": "2024-11-01T14:00:00Z",
}
MMS = SMS | {"type": "mms", "body": "with a picture", "attachments": ["https://example.com/image.jpg"]}
EMAIL = {
    "from": "user@usehatchapp.com",
    "to": "contact@gmail.com",
    "body": "Hello! This is a test email message with <b>HTML</b> formatting.",
    "attachments": ["https://example.com/document.pdf"],
    "timestamp": "2024-11-01T14:00:00Z",
}
VOICE = {"from": "+12016661234", "to": "+18045551234", "mode": "call", "say": "Hello! This is a test call."}
VOICE_DROP = VOICE | {"mode": "voicemail_drop", "say": "Hello! This is a voicemail from the clinic."}
INBOUND_SMS = {
    "from": "+18045551234",
    "to": "+12016661234",
    "type": "sms",
    "messaging_provider_id": "message-1",
    "body": "This is an incoming SMS message",
    "attachments": None,
    "timestamp": "2024-11-01T14:00:00Z",
}
INBOUND_MMS = INBOUND_SMS | {
    "type": "mms",
    "messaging_provider_id": "message-2",
    "attachments": ["https://example.com/r.jpg"],
}
INBOUND_EMAIL = {
    "from": "contact@gmail.com",
    "to": "user@usehatchapp.com",
    "xillio_id": "message-3",
    "body": "<html><body>This is an incoming email with <b>HTML</b> content</body></html>",
    "attachments": ["https://example.com/received-document.pdf"],
    "timestamp": "2024-11-01T14:00:00Z",
}

# The sandbox's Twilio create, as the adapter calls it (Basic auth with the account SID).
SANDBOX_TWILIO_AUTH = (
    "Basic " + base64.b64encode(f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode()).decode()
)
SANDBOX_TWILIO_CREATE = f"/sandbox/twilio/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"
