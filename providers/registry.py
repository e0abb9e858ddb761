"""Provider instances from settings.PROVIDERS, and the ordered choice per message type."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from providers.base import Provider


@cache
def _instances() -> dict[str, Provider]:
    instances = {}
    for name, config in settings.PROVIDERS.items():
        options = {k: v for k, v in config.items() if k not in {"adapter", "types"}}
        options.setdefault("signature_tolerance_seconds", settings.WEBHOOK_TOLERANCE_SECONDS)
        adapter = import_string(config["adapter"])
        if settings.PROVIDER_SANDBOX and adapter.format == "sendgrid":
            from providers.sandbox.signing import sendgrid_public_key

            options["public_keys"] = [*options.get("public_keys", []), sendgrid_public_key()]
        instances[name] = adapter(
            name, options=options, callback_base_url=settings.PUBLIC_BASE_URL, timeout=settings.PROVIDER_TIMEOUT_SECONDS
        )
    return instances


def provider_get(name: str) -> Provider | None:
    return _instances().get(name)


def providers_for(message_type: str) -> list[Provider]:
    """The instances that carry `message_type`, in failover order."""
    return [_instances()[name] for name, config in settings.PROVIDERS.items() if message_type in config["types"]]


def reset() -> None:
    """Forget built instances (tests that change settings call this)."""
    _instances.cache_clear()
