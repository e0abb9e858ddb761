"""Webhook endpoints: verify first, store, answer once it is durable.

Assignment format: POST /api/webhooks/sms and /api/webhooks/email (JSON, HMAC-SHA256
signature, see signatures.py). Provider format: POST /api/webhooks/providers/<name>/
status and /inbound, verified by that provider's own scheme.
"""

import logging
from urllib.parse import parse_qs

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config import metrics
from config.errors import WRITE_ERROR_RESPONSES, ApiError
from config.parsers import JSONParser
from conversations.addresses import normalize_phone
from messaging.fields import validated
from messaging.selectors import message_for_call
from messaging.serializers import MessageSerializer
from messaging.services import ReceivedMessage, outbound_for
from providers.base import PermanentError, UnsupportedError, WebhookRequest
from providers.registry import provider_get
from webhooks import signatures
from webhooks.models import WebhookEvent
from webhooks.serializers import EmailWebhookSerializer, SmsWebhookSerializer, WebhookAckSerializer
from webhooks.services import webhook_call_greeting, webhook_inbound, webhook_status

logger = logging.getLogger(__name__)


class _WebhookApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "webhooks"  # limited per sending address, more widely than the API


class _AssignmentWebhookApi(_WebhookApi):
    serializer_class = None

    def post(self, request):
        signed = _check_signature(request)
        data = validated(self.serializer_class, request.data)
        result = webhook_inbound(
            received=self.serializer_class.received(data), payload=_text(request.body), signed=signed
        )
        if result.message is None:
            return Response({"status": "unrouted", "detail": "No account owns the recipient address."}, status=200)
        structlog.contextvars.bind_contextvars(message_id=result.message.pk)  # on the request's log line
        code = status.HTTP_201_CREATED if result.outcome == WebhookEvent.Outcome.PROCESSED else status.HTTP_200_OK
        return Response(MessageSerializer(result.message).data, status=code)


_INBOUND_RESPONSES = {
    201: OpenApiResponse(MessageSerializer, description="Stored a new inbound message"),
    200: OpenApiResponse(MessageSerializer, description="Seen before: the stored message, unchanged"),
    **WRITE_ERROR_RESPONSES,
}


class SmsWebhookApi(_AssignmentWebhookApi):
    serializer_class = SmsWebhookSerializer

    @extend_schema(
        summary="Inbound SMS/MMS from the messaging provider",
        request=SmsWebhookSerializer,
        responses=_INBOUND_RESPONSES,
    )
    def post(self, request):
        return super().post(request)


class EmailWebhookApi(_AssignmentWebhookApi):
    serializer_class = EmailWebhookSerializer

    @extend_schema(
        summary="Inbound email from the email provider", request=EmailWebhookSerializer, responses=_INBOUND_RESPONSES
    )
    def post(self, request):
        return super().post(request)


def _check_signature(request) -> bool:
    """True when validly signed; unsigned passes only where ALLOW_UNSIGNED_WEBHOOKS."""
    verdict = signatures.verify(
        signature=request.headers.get(signatures.SIGNATURE_HEADER, ""),
        timestamp=request.headers.get(signatures.TIMESTAMP_HEADER, ""),
        body=request.body,
    )
    if verdict is signatures.Verdict.VALID:
        return True
    if verdict is signatures.Verdict.MISSING and settings.ALLOW_UNSIGNED_WEBHOOKS:
        logger.warning("unsigned webhook accepted on %s (local mode)", request.path)
        return False
    _refuse(verdict, webhook=request.path.rstrip("/").rsplit("/", 1)[-1])


_REFUSALS = {
    signatures.Verdict.MISSING: "The webhook is not signed.",
    signatures.Verdict.STALE: "The signature timestamp is outside the allowed window.",
    signatures.Verdict.INVALID: "The signature does not match.",
}


def _refuse(verdict: signatures.Verdict, *, webhook: str, scheme: str = ""):
    metrics.WEBHOOK_SIGNATURE_FAILURES.labels(webhook=webhook, reason=verdict).inc()
    logger.warning("%s webhook refused: signature %s", webhook, verdict)
    prefix = f"{scheme} webhook: " if scheme else ""
    raise ApiError(401, "invalid_signature", prefix + _REFUSALS[verdict])


class _ProviderWebhookApi(_WebhookApi):
    parser_classes = [JSONParser, FormParser]

    def _request(self, request, name: str):
        provider = provider_get(name)
        if provider is None:
            raise NotFound("No such provider.")
        form = (
            parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            if request.content_type == "application/x-www-form-urlencoded"
            else {}
        )
        webhook = WebhookRequest(
            url=settings.PUBLIC_BASE_URL + request.get_full_path(),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.body,
            form=form,
        )
        verdict = provider.verify_webhook(webhook)
        if verdict is not signatures.Verdict.VALID:
            _refuse(verdict, webhook=provider.name, scheme=provider.name)
        return provider, webhook


class ProviderStatusWebhookApi(_ProviderWebhookApi):
    @extend_schema(
        summary="Delivery receipts in a provider's own format (Twilio status callback, SendGrid Event Webhook)",
        request=None,
        responses={200: WebhookAckSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request, name: str):
        provider, webhook = self._request(request, name)
        try:
            updates = provider.parse_status(webhook)
        except PermanentError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        result = webhook_status(provider=provider.name, updates=updates, payload=_text(webhook.body), signed=True)
        return Response(
            {
                "status": "ok",
                "processed": result.processed,
                "duplicates": result.duplicates,
                "unmatched": result.unmatched,
            }
        )


class ProviderInboundWebhookApi(_ProviderWebhookApi):
    @extend_schema(
        summary="Inbound messages in a provider's own format (Twilio incoming message webhook)",
        request=None,
        responses={200: WebhookAckSerializer, 201: WebhookAckSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request, name: str):
        provider, webhook = self._request(request, name)
        try:
            inbound = provider.parse_inbound(webhook)
        except UnsupportedError as exc:
            raise NotFound(str(exc)) from None
        except PermanentError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        created = 0
        for message in inbound:
            received = _received(provider.name, message)
            result = webhook_inbound(received=received, payload=_text(webhook.body), signed=True)
            created += result.outcome == WebhookEvent.Outcome.PROCESSED
        return Response({"status": "ok", "created": created}, status=201 if created else 200)


_TWIML_RESPONSES = {(200, "text/xml"): OpenApiResponse(OpenApiTypes.STR, description="TwiML"), **WRITE_ERROR_RESPONSES}


class ProviderVoiceWebhookApi(_ProviderWebhookApi):
    @extend_schema(
        summary="Incoming calls to an account's numbers (Twilio's voice URL): a greeting, then a voicemail",
        description=(
            "Answers with TwiML that says the account's greeting and records a voicemail; the recording "
            "and its transcription come back to /inbound, which stores the voicemail in the caller's "
            "conversation. A number no account owns is refused (`<Reject/>`)."
        ),
        request=None,
        responses=_TWIML_RESPONSES,
    )
    def post(self, request, name: str):
        provider, webhook = self._request(request, name)
        try:
            call = provider.parse_call(webhook)
        except UnsupportedError as exc:
            raise NotFound(str(exc)) from None
        except PermanentError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        reply = provider.answer_call(call, greeting=None if call.recorded else webhook_call_greeting(call=call))
        return HttpResponse(reply.body, content_type=reply.content_type)


class ProviderCallInstructionsApi(_ProviderWebhookApi):
    @extend_schema(
        summary="What an outbound call says once answered (Twilio's call URL: voicemail drops)",
        description="`ref` is our message id. Who answered (`AnsweredBy`) decides what a voicemail drop says.",
        parameters=[OpenApiParameter("ref", str, OpenApiParameter.QUERY, description="The message id.")],
        request=None,
        responses=_TWIML_RESPONSES,
    )
    def post(self, request, name: str):
        provider, webhook = self._request(request, name)
        message = message_for_call(reference=request.GET.get("ref", ""))
        if message is None:
            logger.warning("%s: instructions asked for an unknown call (ref %r)", provider.name, request.GET.get("ref"))
        try:
            reply = provider.call_reply(outbound_for(message) if message else None, webhook)
        except UnsupportedError as exc:
            raise NotFound(str(exc)) from None
        return HttpResponse(reply.body, content_type=reply.content_type)


def _received(provider: str, message) -> ReceivedMessage:
    try:
        from_address, to_address = normalize_phone(message.from_address), normalize_phone(message.to_address)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", f"Unusable address: {exc.messages[0]}") from None
    if not message.provider_message_id:
        raise ApiError(400, "invalid_request", "The message has no provider id.")
    if "\x00" in message.body:
        raise ApiError(400, "invalid_request", "The body must not contain NUL characters.")
    return ReceivedMessage(
        provider=provider,
        provider_message_id=message.provider_message_id,
        type=message.type,
        from_address=from_address,
        to_address=to_address,
        body=message.body,
        attachments=message.attachments,
        timestamp=message.timestamp,
        duration=message.duration_seconds,
    )


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd")
