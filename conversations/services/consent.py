"""Consent: who may be written to. Opt-outs (a number told one of the account's senders
to stop) and suppressions (an email address that bounced, complained or unsubscribed).

Adding one is idempotent (the unique constraint decides, so two keywords or two
provider events racing store one row); each change says whether it changed anything,
so a caller answers a keyword once even when the provider delivers it twice.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Account, OptOut, Suppression


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
    except IntegrityError:  # the same opt-out, stored meanwhile by a concurrent request
        return OptOut.objects.get(account=account, sender=sender, address=address), False
    return optout, True


def optout_remove(*, account: Account, sender: str, address: str) -> OptOut | None:
    """Opt `address` back in to messages from `sender`; the opt-out removed, if any."""
    optout = OptOut.objects.filter(account=account, sender=sender, address=address).first()
    if optout is None or not OptOut.objects.filter(pk=optout.pk).delete()[0]:
        return None
    return optout


def optout_delete(*, optout: OptOut) -> bool:
    return bool(OptOut.objects.filter(pk=optout.pk).delete()[0])


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
    except IntegrityError:
        return Suppression.objects.get(account=account, address=address), False
    return suppression, True


def suppression_delete(*, suppression: Suppression) -> bool:
    return bool(Suppression.objects.filter(pk=suppression.pk).delete()[0])
