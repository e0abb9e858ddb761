"""API-key authentication: `Authorization: Bearer <key>` names the account a request
acts for. Every read and write is then scoped to `request.user`, an Account."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from conversations.models import Account, ApiKey
from conversations.selectors import account_development, api_key_active
from conversations.services import api_key_hash

LAST_USED_RESOLUTION = timedelta(minutes=5)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            if settings.ALLOW_ANONYMOUS_API:
                return account_development(), None
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != "bearer" or not raw_key.strip():
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
        key = api_key_active(key_hash=api_key_hash(raw_key.strip()))
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        _touch(key)
        return key.account, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes the API key to the OpenAPI schema (and Swagger UI's Authorize button)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`"}


def _touch(key: ApiKey) -> None:
    """Record use, at most every few minutes, to keep writes off the request path."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now  # the remembered copy too (conversations/selectors.py)


class HasAccount(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Account)
