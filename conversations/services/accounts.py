"""State changes of accounts, their sender addresses and API keys."""

import hashlib
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Account, ApiKey, Sender
from conversations.selectors import recent_reads_forget

API_KEY_PREFIX = "sk_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, account: Account, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned once and never stored."""
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(account=account, name=name, prefix=raw_key[:10], key_hash=api_key_hash(raw_key))
    return key, raw_key


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    recent_reads_forget()  # an UPDATE sends no post_save


def account_create(*, name: str, senders: list[str] = (), kind: str = "", throughput: float | None = None) -> Account:
    """Create the account `name` (or take it) and give it `senders`; `kind` and
    `throughput`, when given, are set on each of them (services/pacing in messaging)."""
    with transaction.atomic():
        account, _ = Account.objects.get_or_create(name=name)
        for address in senders:
            sender_add(account=account, address=address, kind=kind, throughput=throughput)
    return account


def sender_add(*, account: Account, address: str, kind: str = "", throughput: float | None = None) -> Sender:
    """Give `account` an address it sends from (already normalised, or `@domain`),
    setting its kind and throughput when given. An address owned by another account is
    refused (IntegrityError)."""
    sender, created = Sender.objects.get_or_create(
        address=address, defaults={"account": account, "kind": kind, "throughput": throughput}
    )
    if not created and sender.account_id != account.pk:
        raise IntegrityError(f"{address} already belongs to another account")
    changes = {"kind": kind} if kind else {}
    if throughput is not None:
        changes["throughput"] = throughput
    if not created and changes:
        Sender.objects.filter(pk=sender.pk).update(**changes)
        for field, value in changes.items():
            setattr(sender, field, value)
    return sender
