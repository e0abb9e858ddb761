from django.db.models import Prefetch, QuerySet

from conversations.models import Account
from messaging.models import DeliveryAttempt, Message, MessageEvent


def message_list_for_conversation(*, account: Account, conversation_id: int) -> QuerySet[Message]:
    return Message.objects.filter(account=account, conversation_id=conversation_id).order_by("created_at", "id")


def message_rows_for_conversation(
    *, account: Account, conversation_id: int, fields: tuple[str, ...], status: str | None = None
) -> QuerySet:
    """The conversation's messages (those in `status`, if given) as rows of `fields`
    (dicts), not models: building 50 model instances was a third of a page's time."""
    messages = message_list_for_conversation(account=account, conversation_id=conversation_id)
    return (messages.filter(status=status) if status else messages).values(*fields)


def message_rows_for_contact(*, account: Account, contact_id: int, fields: tuple[str, ...]) -> QuerySet:
    """One timeline across channels: the messages of every conversation of the contact,
    in time order, as rows of `fields`."""
    return (
        Message.objects.filter(account=account, conversation__contact_id=contact_id)
        .order_by("created_at", "id")
        .values(*fields)
    )


def message_for_call(*, reference: str) -> Message | None:
    """The outbound voice message a provider's call is about, by the reference (our id)
    we gave it."""
    if not (reference.isdigit() and len(reference) < 19):
        return None
    return Message.objects.filter(
        pk=int(reference), type=Message.Type.VOICE, direction=Message.Direction.OUTBOUND
    ).first()


def message_get(*, account: Account, message_id: int) -> Message | None:
    return (
        Message.objects.filter(account=account, pk=message_id)
        .prefetch_related(
            Prefetch("events", queryset=MessageEvent.objects.order_by("id")),
            Prefetch("delivery_attempts", queryset=DeliveryAttempt.objects.order_by("id")),
        )
        .first()
    )
