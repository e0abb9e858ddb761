"""Reads worth naming: which account a key or an address belongs to, and conversations."""

import time

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch, QuerySet

from config.db import server_bound_cursor
from conversations.addresses import AddressKind, address_kind, email_domain, sender_kind_inferred
from conversations.models import Account, ApiKey, Contact, ContactAddress, Conversation, OptOut, Sender, Suppression


def account_development() -> Account:
    account, _ = Account.objects.get_or_create(is_development=True, defaults={"name": "development"})
    return account


# Every API request reads its key and every send its sender's owner: rows that change
# rarely, and whose two lookups were a third of a send's profile (docs/performance.md).
# Each process remembers them for AUTH_CACHE_SECONDS. A change forgets them at once in
# the process that made it; other processes see it within that many seconds.
_recent: dict[tuple, tuple[float, object]] = {}
_RECENT_MAX = 50_000


def _remembered(key: tuple, load):
    seconds = settings.AUTH_CACHE_SECONDS
    if seconds <= 0:
        return load()
    now = time.monotonic()
    hit = _recent.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = load()
    if len(_recent) >= _RECENT_MAX:
        _recent.clear()
    _recent[key] = (now + seconds, value)
    return value


def recent_reads_forget() -> None:
    """Drop what this process remembers of keys and senders (they just changed)."""
    _recent.clear()


def api_key_active(*, key_hash: str) -> ApiKey | None:
    return _remembered(
        ("key", key_hash),
        lambda: ApiKey.objects.select_related("account").filter(key_hash=key_hash, revoked_at__isnull=True).first(),
    )


def account_for_address(*, address: str) -> Account | None:
    """The account that owns a normalised address (an exact sender, or the sender for
    its email domain). In APP_ENV=local the development account owns the rest.
    Remembered like keys (every inbound webhook asks it)."""
    return _remembered(("account", address), lambda: _account_for_address(address))


def _account_for_address(address: str) -> Account | None:
    candidates = [address]
    if address_kind(address) is AddressKind.EMAIL:
        candidates.append(email_domain(address))
    owners = {s.address: s.account for s in Sender.objects.select_related("account").filter(address__in=candidates)}
    for candidate in candidates:  # the exact address wins over its domain
        if candidate in owners:
            return owners[candidate]
    if not settings.IS_PRODUCTION:
        return account_development()
    return None


def account_owns_address(*, account: Account, address: str) -> bool:
    owner = account_for_address(address=address)
    return owner is not None and owner.pk == account.pk


def conversation_list(*, account: Account) -> QuerySet[Conversation]:
    return Conversation.objects.filter(account=account).select_related("contact").order_by("-last_message_at", "-id")


def conversation_get(*, account: Account, conversation_id: int) -> Conversation | None:
    return Conversation.objects.filter(account=account, pk=conversation_id).select_related("contact").first()


def contact_list(*, account: Account, address: str | None = None) -> QuerySet[Contact]:
    """The account's contacts, newest first; with `address` (normalised), the one holding it."""
    contacts = Contact.objects.filter(account=account)
    if address is not None:
        contacts = contacts.filter(addresses__address=address)
    return contacts.prefetch_related(_ADDRESSES).order_by("-id")


def contact_get(*, account: Account, contact_id: int) -> Contact | None:
    return Contact.objects.filter(account=account, pk=contact_id).prefetch_related(_ADDRESSES).first()


_ADDRESSES = Prefetch("addresses", queryset=ContactAddress.objects.order_by("address"))


# --- Consent ----------------------------------------------------------------------------


def optout_list(*, account: Account, sender: str | None = None, address: str | None = None) -> QuerySet[OptOut]:
    optouts = OptOut.objects.filter(account=account)
    if sender is not None:
        optouts = optouts.filter(sender=sender)
    if address is not None:
        optouts = optouts.filter(address=address)
    return optouts.order_by("-id")


def optout_get(*, account: Account, optout_id: int) -> OptOut | None:
    return OptOut.objects.filter(account=account, pk=optout_id).first()


def optouts_among(*, triples: set[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
    """Which of the (account id, sender, address) triples are opted out, in one query."""
    if not triples:
        return set()
    accounts, addresses = {t[0] for t in triples}, {t[2] for t in triples}
    if connection.vendor == "postgresql":
        found = _among(OptOut, ("account_id", "sender", "address"), accounts, addresses)
    else:
        found = OptOut.objects.filter(account_id__in=accounts, address__in=addresses).values_list(
            "account_id", "sender", "address"
        )
    return set(found) & triples


def suppression_list(*, account: Account, address: str | None = None, reason: str | None = None):
    suppressions = Suppression.objects.filter(account=account)
    if address is not None:
        suppressions = suppressions.filter(address=address)
    if reason is not None:
        suppressions = suppressions.filter(reason=reason)
    return suppressions.order_by("-id")


def suppression_get(*, account: Account, suppression_id: int) -> Suppression | None:
    return Suppression.objects.filter(account=account, pk=suppression_id).first()


def suppressed_among(*, pairs: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of the (account id, address) pairs are suppressed, in one query."""
    if not pairs:
        return set()
    accounts, addresses = {p[0] for p in pairs}, {p[1] for p in pairs}
    if connection.vendor == "postgresql":
        found = _among(Suppression, ("account_id", "address"), accounts, addresses)
    else:
        found = Suppression.objects.filter(account_id__in=accounts, address__in=addresses).values_list(
            "account_id", "address"
        )
    return set(found) & pairs


def _among(model, columns: tuple[str, ...], accounts: set[int], addresses: set[str]) -> list[tuple]:
    """The rows of `model` for these accounts and addresses, the addresses as one array
    bound on the server: a batch asks about a thousand, which as an IN list psycopg
    quoted one by one on the client (a tenth of a batch's time)."""
    quote = connection.ops.quote_name
    with server_bound_cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(model._meta.db_table)} "  # noqa: S608
            "WHERE account_id = ANY(%s) AND address = ANY(%s)",
            [sorted(accounts), sorted(addresses)],
        )
        return cursor.fetchall()


def sender_throughputs(*, addresses: set[str]) -> dict[str, tuple[str, float | None]]:
    """For each sending address: its kind (given, else inferred) and its own throughput
    override (None: its kind's default). An email address takes its domain's row when it
    has none of its own; an address with no row is inferred."""
    candidates = set(addresses) | {email_domain(a) for a in addresses if address_kind(a) is AddressKind.EMAIL}
    rows = {s.address: s for s in Sender.objects.filter(address__in=candidates).only("address", "kind", "throughput")}
    answer = {}
    for address in addresses:
        row = rows.get(address)
        if row is None and address_kind(address) is AddressKind.EMAIL:
            row = rows.get(email_domain(address))
        kind = (row.kind if row else "") or sender_kind_inferred(address)
        answer[address] = (kind, row.throughput if row else None)
    return answer
