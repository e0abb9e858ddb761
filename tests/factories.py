import factory
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
