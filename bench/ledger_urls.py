"""The cost ledger's staged endpoints: each does what the one before it does and one
layer of a send more, so the difference between two is what that layer costs. The last
stage is the send endpoint itself (`/api/messages/sms`), mounted as production mounts it.
"""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.urls import urlpatterns as production_urlpatterns
from messaging.fields import validated
from messaging.serializers import MessageSerializer, SmsSendSerializer
from messaging.services import message_send


class Bare(APIView):
    """DRF alone: the JSON body parsed, a constant answer rendered."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        request.data  # noqa: B018 - parsing the body is part of the stage
        return Response({"ok": True}, status=202)


class Authenticated(Bare):
    """+ the API key looked up (conversations.authentication)."""

    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = api_settings.DEFAULT_PERMISSION_CLASSES


class RateLimited(Authenticated):
    """+ the account's sliding-window rate limit (config/ratelimit.py, in Redis)."""

    throttle_classes = api_settings.DEFAULT_THROTTLE_CLASSES


class Validated(RateLimited):
    """+ the send serializer: addresses normalised, the message checked."""

    def post(self, request):
        SmsSendSerializer.new_message(validated(SmsSendSerializer, request.data))
        return Response({"ok": True}, status=202)


class Stored(Validated):
    """+ the message stored as the outbox (conversation, message, event, NOTIFY) and
    rendered as the API answers it."""

    def post(self, request):
        new = SmsSendSerializer.new_message(validated(SmsSendSerializer, request.data))
        message = message_send(account=request.user, new=new)
        return Response(MessageSerializer(message).data, status=202)


STAGES = {"bare": Bare, "authenticated": Authenticated, "rate-limited": RateLimited, "validated": Validated}
STAGES |= {"stored": Stored}

urlpatterns = [
    *production_urlpatterns,
    *(path(f"bench/ledger/{name}", view.as_view()) for name, view in STAGES.items()),
]
