from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The provider sandbox (see views.py): installed, and mounted under /sandbox/, only
    when PROVIDER_SANDBOX is on. A test double: its table is not part of the production
    schema, and nothing outside this package imports it unless the sandbox is on."""

    name = "providers.sandbox"
    label = "sandbox"
    verbose_name = "Provider sandbox"
