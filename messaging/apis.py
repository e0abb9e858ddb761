import functools
import re
from types import SimpleNamespace

import structlog
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import CREATE_ERROR_RESPONSES, ERROR_RESPONSES, ApiError, error_body, flatten_detail
from config.pagination import CursorPage
from conversations.selectors import contact_get, conversation_get
from messaging.fields import validated
from messaging.models import FailureReason, Message
from messaging.selectors import message_get, message_rows_for_contact, message_rows_for_conversation
from messaging.serializers import (
    MESSAGE_FIELDS,
    BatchResponseSerializer,
    BatchSendDocumentation,
    BatchSendSerializer,
    EmailSendSerializer,
    MessageDetailSerializer,
    MessageSerializer,
    SmsSendSerializer,
    VoiceSendSerializer,
)
from messaging.services import (
    ConsentRefused,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    SenderNotOwned,
    idempotency_claim,
    idempotency_fingerprint,
    idempotency_finish,
    idempotency_release,
    message_cancel,
    message_replay,
    message_send,
    messages_send_batch,
)
from messaging.services.transitions import CancelOutcome

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description=(
        "Any unique string (a UUID, say), 1-255 visible ASCII characters. Repeating a request with "
        "the same key and body returns the first answer (with `Idempotent-Replayed: true`) instead "
        "of sending again; keys are kept 24 hours per account."
    ),
)


def idempotent(post):
    """Honour `Idempotency-Key` on a POST that creates messages (services/idempotency.py)."""

    @functools.wraps(post)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return post(view, request, *args, **kwargs)
        if not _IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters.")
        fingerprint = idempotency_fingerprint(method=request.method, path=request.path, data=request.data)
        try:
            claim = idempotency_claim(account=request.user, key=key, fingerprint=fingerprint)
        except IdempotencyKeyMismatch:
            raise ApiError(
                422, "idempotency_key_reused", "This Idempotency-Key was already used with a different request."
            ) from None
        except IdempotencyKeyInUse:
            raise ApiError(
                409, "idempotency_key_in_use", "A request with this Idempotency-Key is still running; retry shortly."
            ) from None
        if claim.replay:
            record = claim.record
            return Response(
                record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"}
            )
        try:
            # The answer is stored with what the request created: both commit, or neither.
            with transaction.atomic():
                response = post(view, request, *args, **kwargs)
                idempotency_finish(record=claim.record, status=response.status_code, body=response.data)
        except BaseException:
            idempotency_release(record=claim.record)
            raise
        return response

    return wrapper


def _send(request, serializer_class) -> Response:
    data = validated(serializer_class, request.data)
    try:
        message = message_send(account=request.user, new=serializer_class.new_message(data))
    except SenderNotOwned as exc:
        raise ApiError(
            403, "sender_not_allowed", f"This account does not own {exc}.", {"from": ["not owned by this account"]}
        ) from None
    except ConsentRefused as exc:
        error = consent_error(exc.reason, exc.new)
        raise ApiError(403, error["code"], error["message"], error["fields"]) from None
    structlog.contextvars.bind_contextvars(message_id=message.pk)  # on the request's log line
    return Response(MessageSerializer(message).data, status=202)


def consent_error(reason: str, new) -> dict:
    """The error body of a send its recipient may not get (as Twilio's 21610 says it)."""
    if reason == FailureReason.SUPPRESSED:
        return {
            "code": "recipient_suppressed",
            "message": f"{new.to_address} is on this account's suppression list (it bounced, reported spam or "
            "unsubscribed); remove it there to write to it again.",
            "fields": {"to": ["suppressed"]},
        }
    return {
        "code": "recipient_opted_out",
        "message": f"Attempt to send to unsubscribed recipient: {new.to_address} opted out of messages from "
        f"{new.from_address}. It can opt back in by replying START.",
        "fields": {"to": ["opted out of messages from this sender"]},
    }


class SmsSendApi(APIView):
    @extend_schema(
        summary="Send an SMS or MMS",
        request=SmsSendSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={202: MessageSerializer, **CREATE_ERROR_RESPONSES},
    )
    @idempotent
    def post(self, request):
        return _send(request, SmsSendSerializer)


class EmailSendApi(APIView):
    @extend_schema(
        summary="Send an email",
        request=EmailSendSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={202: MessageSerializer, **CREATE_ERROR_RESPONSES},
    )
    @idempotent
    def post(self, request):
        return _send(request, EmailSendSerializer)


class VoiceSendApi(APIView):
    @extend_schema(
        summary="Place a call, or drop a voicemail (docs/voice.md)",
        description=(
            "A message of type `voice` in the phone conversation with the contact: stored, queued and "
            "dispatched as any message (202), its call's progress moving it to `sent`, then `delivered` "
            "(the call connected) or `undelivered` (busy, no answer, failed; or a drop that hung up on a person)."
        ),
        request=VoiceSendSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={202: MessageSerializer, **CREATE_ERROR_RESPONSES},
    )
    @idempotent
    def post(self, request):
        return _send(request, VoiceSendSerializer)


class BatchSendApi(APIView):
    @extend_schema(
        summary="Send up to 1,000 messages of any type in one request",
        description=(
            "Each item is validated on its own, as by the single-message endpoints. The valid ones are "
            "stored and queued together; the answer has one result per item, in order: the queued "
            "message's id, or why the item was refused: `invalid_request` (its fields), "
            "`sender_not_allowed`, or, as the single sends answer 403, `recipient_opted_out` (the number "
            "opted out of that sender) and `recipient_suppressed` (a suppressed email address). 202 when "
            "at least one item was accepted; 400 (with every item's errors under `fields`) when none was."
        ),
        request=BatchSendDocumentation,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={202: BatchResponseSerializer, **CREATE_ERROR_RESPONSES},
    )
    @idempotent
    def post(self, request):
        serializer = BatchSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = serializer.new_messages()
        valid = [index for index, item in enumerate(items) if not isinstance(item, dict)]
        sent = messages_send_batch(account=request.user, batch=[items[index] for index in valid])
        refusals = {index: _invalid(item) for index, item in enumerate(items) if isinstance(item, dict)}
        refusals |= {valid[position]: _not_owned(address) for position, address in sent.not_owned.items()}
        refusals |= {
            valid[position]: consent_error(reason, items[valid[position]])
            for position, reason in sent.not_consented.items()
        }
        if not sent.messages:
            fields = {
                f"messages.{index}.{field}": errors
                for index, error in sorted(refusals.items())
                for field, errors in (error.get("fields") or {"non_field_errors": [error["message"]]}).items()
            }
            raise ApiError(400, "invalid_request", "No message in the batch is valid.", fields)
        stored = {valid[position]: message for position, message in sent.messages.items()}
        results = [
            {"index": index, "error": refusals[index]}
            if index in refusals
            else {
                "index": index,
                "id": stored[index].id,
                "conversation_id": stored[index].conversation_id,
                "status": stored[index].status,
                "encoding": stored[index].encoding or None,
                "segments": stored[index].segments,
            }
            for index in range(len(items))
        ]
        body = {"accepted": len(stored), "rejected": len(refusals), "results": results}
        return Response(body, status=202)


def _invalid(errors: dict) -> dict:
    fields = flatten_detail(errors)
    general = fields.pop("non_field_errors", None)
    return error_body("invalid_request", general[0] if general else "The message has invalid fields.", fields)["error"]


def _not_owned(address: str) -> dict:
    return error_body(
        "sender_not_allowed", f"This account does not own {address}.", {"from": ["not owned by this account"]}
    )["error"]


class MessageDetailApi(APIView):
    @extend_schema(
        summary="One message, with its events and delivery attempts",
        responses={200: MessageDetailSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, message_id: int):
        message = message_get(account=request.user, message_id=message_id)
        if message is None:
            raise NotFound("No such message.")
        return Response(MessageDetailSerializer(message).data)


class MessageRetryApi(APIView):
    @extend_schema(
        summary="Replay a failed message (a dead letter) with a fresh attempt budget",
        request=None,
        responses={202: MessageSerializer, 409: ERROR_RESPONSES[400], **ERROR_RESPONSES},
    )
    def post(self, request, message_id: int):
        message = message_get(account=request.user, message_id=message_id)
        if message is None:
            raise NotFound("No such message.")
        if not message_replay(message=message, actor="api"):
            message.refresh_from_db(fields=["status"])
            raise ApiError(409, "not_failed", f"Only failed messages can be retried; this one is {message.status}.")
        message.refresh_from_db()
        return Response(MessageSerializer(message).data, status=202)


class MessageCancelApi(APIView):
    @extend_schema(
        summary="Cancel a scheduled message before its send_at",
        description=(
            "A `scheduled` message becomes `canceled` and is never sent (200 with the message). Canceling "
            "it again answers the same. A message already released (or never scheduled) is a 409."
        ),
        request=None,
        responses={200: MessageSerializer, 409: ERROR_RESPONSES[400], **ERROR_RESPONSES},
    )
    def post(self, request, message_id: int):
        message = message_get(account=request.user, message_id=message_id)
        if message is None:
            raise NotFound("No such message.")
        canceled = message_cancel(message=message, actor="api")
        if canceled.outcome is CancelOutcome.TOO_LATE:
            raise ApiError(
                409,
                "not_scheduled",
                f"Only scheduled messages can be canceled; this one is {canceled.message.status}.",
            )
        return Response(MessageSerializer(canceled.message).data)


STATUS_PARAMETER = OpenApiParameter(
    "status", str, OpenApiParameter.QUERY, enum=Message.Status.values, description="Only messages in this status."
)


def _status(request) -> str | None:
    status = request.query_params.get("status")
    if status is not None and status not in Message.Status.values:
        allowed = ", ".join(Message.Status.values)
        raise ApiError(400, "invalid_request", f"Unknown status; one of {allowed}.", {"status": [f"one of {allowed}"]})
    return status


class ConversationMessageListApi(GenericAPIView):
    serializer_class = MessageSerializer
    pagination_class = CursorPage.ordered_by("created_at", "id")

    @extend_schema(
        summary="The messages of a conversation, oldest first (scheduled ones included)",
        parameters=[STATUS_PARAMETER],
        responses={200: MessageSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request, conversation_id: int):
        rows = message_rows_for_conversation(
            account=request.user, conversation_id=conversation_id, fields=MESSAGE_FIELDS, status=_status(request)
        )
        page = self.paginate_queryset(rows)
        # A conversation always has a message: only an empty page needs to ask whether
        # it exists (and is this account's), which saves a query on every other page.
        if not page and conversation_get(account=request.user, conversation_id=conversation_id) is None:
            raise NotFound("No such conversation.")
        serializer = MessageSerializer()
        return self.get_paginated_response([serializer.to_representation(SimpleNamespace(**row)) for row in page])


class ContactMessageListApi(GenericAPIView):
    serializer_class = MessageSerializer
    pagination_class = CursorPage.ordered_by("created_at", "id")

    @extend_schema(
        summary="A contact's timeline: the messages of all its conversations (SMS, MMS, email), oldest first",
        responses={200: MessageSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request, contact_id: int):
        page = self.paginate_queryset(
            message_rows_for_contact(account=request.user, contact_id=contact_id, fields=MESSAGE_FIELDS)
        )
        # As for a conversation: only an empty page asks whether the contact exists.
        if not page and contact_get(account=request.user, contact_id=contact_id) is None:
            raise NotFound("No such contact.")
        serializer = MessageSerializer()
        return self.get_paginated_response([serializer.to_representation(SimpleNamespace(**row)) for row in page])
