"""The SMS keywords applied: an inbound STOP opts its writer out of the number it wrote
to, START opts it back in, HELP asks who is writing; each is answered from that number
through the normal pipeline (its answer is exempt from the opt-out it confirms)."""

import logging

from django.conf import settings

from config import metrics
from conversations.keywords import Keyword, keyword_of
from conversations.models import OptOut
from conversations.services import optout_add, optout_remove
from messaging.models import Message
from messaging.services.sending import NewMessage, message_send

logger = logging.getLogger(__name__)

_REPLY_FIELD = {Keyword.OPT_OUT: "optout_reply", Keyword.OPT_IN: "optin_reply", Keyword.HELP: "help_reply"}


def message_keyword_apply(*, message: Message, first_time: bool) -> Message | None:
    """If the inbound SMS `message` is a keyword, apply it and queue its answer; the
    answer, or None. `first_time`: not a provider's redelivery of a message already
    stored. A redelivery is answered only if it changed something (the first copy's
    request died before it could), so a keyword is answered once however often it comes."""
    if message.direction != Message.Direction.INBOUND or message.type not in (Message.Type.SMS, Message.Type.MMS):
        return None
    found = keyword_of(message.body)
    if found is None:
        return None
    kind, word = found
    account, sender, address = message.account, message.to_address, message.from_address
    if kind is Keyword.OPT_OUT:
        _, changed = optout_add(
            account=account, sender=sender, address=address, source=OptOut.Source.KEYWORD, keyword=word
        )
    elif kind is Keyword.OPT_IN:
        changed = optout_remove(account=account, sender=sender, address=address) is not None
    else:
        changed = False
    metrics.KEYWORDS.labels(keyword=kind.value).inc()
    logger.info("keyword %s from a recipient of %s (%s)", word, sender, "changed" if changed else "no change")
    if not (changed or first_time):
        return None
    body = getattr(account, _REPLY_FIELD[kind]) or settings.CONSENT_REPLIES[kind.value]
    reply = NewMessage(type=Message.Type.SMS, from_address=sender, to_address=address, body=body)
    return message_send(account=account, new=reply, keyword_reply=True)
