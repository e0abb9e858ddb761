"""Consumers' webhook endpoints: their URLs checked, their secrets made and rotated.

A secret is Standard Webhooks' `whsec_` + base64 of random bytes; it is shown once, when
made. Rotating keeps the old secret signing beside the new one for an overlap window, so
a consumer can switch without losing a delivery."""

import base64
import ipaddress
import secrets
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.events import EventType
from conversations.models import Account
from webhooks.events import endpoints_changed
from webhooks.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SECRET_BYTES = 32


class EndpointError(Exception):
    """The root of what an endpoint's owner asked wrong."""


class UrlRefused(EndpointError):
    """The URL is not one we post to (scheme, or an address we may not reach)."""


class UnknownEventTypes(EndpointError):
    def __init__(self, types: list[str]):
        super().__init__(f"unknown event types: {', '.join(types)}")
        self.types = types


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def address_allowed(address: str) -> bool:
    """Whether we may post to this IP address: a public unicast one, or any when
    WEBHOOK_ALLOW_PRIVATE_URLS (loopback, private, link-local, reserved are refused
    otherwise, so an endpoint cannot point us at our own network)."""
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def url_addresses(url: str) -> list[tuple[str, int]]:
    """The (address, port) pairs `url`'s host resolves to, every one allowed; UrlRefused
    otherwise. Asked at registration and again before every delivery, so a DNS answer
    that changed cannot smuggle in a private address."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UrlRefused(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlRefused("must be an absolute http(s) URL")
    if parts.scheme == "http" and not settings.WEBHOOK_ALLOW_HTTP:
        raise UrlRefused("must use https")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlRefused("has an invalid port") from exc
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"its host {parts.hostname} cannot be resolved") from exc
    addresses = list(dict.fromkeys((info[4][0], port) for info in found))
    refused = [a for a, _ in addresses if not address_allowed(a)]
    if refused or not addresses:
        raise UrlRefused(f"its host resolves to an address we do not post to ({', '.join(refused) or 'none'})")
    return addresses


def _event_types_checked(event_types: list[str]) -> list[str]:
    known = set(EventType)
    unknown = [t for t in event_types if t not in known]
    if unknown:
        raise UnknownEventTypes(unknown)
    return list(dict.fromkeys(event_types))


def endpoint_create(
    *, account: Account, url: str, event_types: list[str], enabled: bool = True, description: str = ""
) -> WebhookEndpoint:
    url_addresses(url)
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.create(
        account=account,
        url=url,
        event_types=_event_types_checked(event_types),
        enabled=enabled,
        description=description,
        secret=secret_new(),
        created_at=now,
        updated_at=now,
    )
    transaction.on_commit(endpoints_changed)
    return endpoint


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change url, event_types, enabled or description. Enabling clears why it was disabled."""
    if "url" in changes:
        url_addresses(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = _event_types_checked(changes["event_types"])
    if changes.get("enabled") and not endpoint.enabled:
        changes |= {"disabled_reason": "", "disabled_at": None, "failing_since": None}
    elif changes.get("enabled") is False and endpoint.enabled:
        changes |= {"disabled_reason": "disabled by the account", "disabled_at": timezone.now()}
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.updated_at = timezone.now()
    endpoint.save(update_fields=[*changes, "updated_at"])
    transaction.on_commit(endpoints_changed)
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()
    transaction.on_commit(endpoints_changed)


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint, overlap_seconds: int | None = None) -> WebhookEndpoint:
    """A new secret; the current one keeps signing beside it for `overlap_seconds`
    (WEBHOOK_SECRET_OVERLAP_SECONDS by default; 0: retired at once)."""
    overlap = settings.WEBHOOK_SECRET_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    now = timezone.now()
    endpoint.previous_secret = endpoint.secret if overlap > 0 else ""
    endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap) if overlap > 0 else None
    endpoint.secret = secret_new()
    endpoint.updated_at = now
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


def endpoint_secrets(endpoint: WebhookEndpoint, *, now) -> list[str]:
    """The secrets that sign now: the current one, and the previous one in its overlap."""
    signing = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        signing.append(endpoint.previous_secret)
    return signing
