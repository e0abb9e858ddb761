"""Consent: who may be written to. Opt-outs (a number told one of the account's senders
to stop) and suppressions (an email address that bounced, complained or unsubscribed).

Adding one is idempotent (the unique constraint decides, so two keywords or two
provider events racing store one row); each change says whether it changed anything,
so a caller answers a keyword once even when the provider delivers it twice.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.events import EventType, NewEvent, event_wanted, events_record
from conversations.models import Account, OptOut, Suppression
from conversations.serializers import OptOutSerializer, SuppressionSerializer


def optout_add(*, account: Account, sender: str, address: str, source: str, keyword: str = "") -> tuple[OptOut, bool]:
    """Opt `address` out of messages from `sender`; (the opt-out, whether it is new)."""
    existing = OptOut.objects.filter(account=account, sender=sender, address=address).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            optout = OptOut.objects.create(
                account=account,
                sender=sender,
                address=address,
                source=source,
                keyword=keyword,
                created_at=timezone.now(),
            )
            _record(optout, EventType.OPTOUT_CREATED)
    except IntegrityError:  # the same opt-out, stored meanwhile by a concurrent request
        return OptOut.objects.get(account=account, sender=sender, address=address), False
    return optout, True


def optout_remove(*, account: Account, sender: str, address: str) -> OptOut | None:
    """Opt `address` back in to messages from `sender`; the opt-out removed, if any."""
    optout = OptOut.objects.filter(account=account, sender=sender, address=address).first()
    if optout is None or not optout_delete(optout=optout):
        return None
    return optout


def optout_delete(*, optout: OptOut) -> bool:
    with transaction.atomic():
        deleted = bool(OptOut.objects.filter(pk=optout.pk).delete()[0])
        if deleted:
            _record(optout, EventType.OPTOUT_DELETED)
    return deleted


def suppression_add(
    *, account: Account, address: str, reason: str, detail: dict | None = None
) -> tuple[Suppression, bool]:
    """Suppress `address` for the account; (the suppression, whether it is new). An
    address already suppressed keeps its first reason."""
    existing = Suppression.objects.filter(account=account, address=address).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            suppression = Suppression.objects.create(
                account=account, address=address, reason=reason, detail=detail or {}, created_at=timezone.now()
            )
            _record(suppression, EventType.SUPPRESSION_CREATED)
    except IntegrityError:
        return Suppression.objects.get(account=account, address=address), False
    return suppression, True


def suppression_delete(*, suppression: Suppression) -> bool:
    with transaction.atomic():
        deleted = bool(Suppression.objects.filter(pk=suppression.pk).delete()[0])
        if deleted:
            _record(suppression, EventType.SUPPRESSION_DELETED)
    return deleted


def _record(row: OptOut | Suppression, event_type: EventType) -> None:
    """The consumer event of a consent change, in its transaction, as the API shows the row."""
    if not event_wanted(account_id=row.account_id, event_type=event_type):
        return
    serializer = OptOutSerializer if isinstance(row, OptOut) else SuppressionSerializer
    events_record([NewEvent(account_id=row.account_id, type=event_type, payload=dict(serializer(row).data))])
