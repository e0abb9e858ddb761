from django.apps import AppConfig
from django.core.signals import setting_changed


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"

    def ready(self):
        setting_changed.connect(_reset_registry)


def _reset_registry(setting, **kwargs):
    if setting in {"PROVIDERS", "PUBLIC_BASE_URL", "PROVIDER_TIMEOUT_SECONDS", "PROVIDER_SANDBOX"}:
        from providers import registry

        registry.reset()
