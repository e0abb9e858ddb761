from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ERROR_RESPONSES, WRITE_ERROR_RESPONSES, ApiError
from config.pagination import CursorPage
from conversations.selectors import conversation_get
from messaging.models import Message
from messaging.selectors import message_get, message_list_for_conversation
from messaging.serializers import EmailSendSerializer, MessageDetailSerializer, MessageSerializer, SmsSendSerializer
from messaging.services import SenderNotOwned, message_replay, message_send


def _send(request, serializer_class) -> Response:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    try:
        message = message_send(account=request.user, new=serializer.new_message())
    except SenderNotOwned as exc:
        raise ApiError(
            403, "sender_not_allowed", f"This account does not own {exc}.", {"from": ["not owned by this account"]}
        ) from None
    return Response(MessageSerializer(message).data, status=202)


class SmsSendApi(APIView):
    @extend_schema(
        summary="Send an SMS or MMS",
        request=SmsSendSerializer,
        responses={202: MessageSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request):
        return _send(request, SmsSendSerializer)


class EmailSendApi(APIView):
    @extend_schema(
        summary="Send an email",
        request=EmailSendSerializer,
        responses={202: MessageSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request):
        return _send(request, EmailSendSerializer)


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
        if message.status != Message.Status.FAILED or not message_replay(message=message, actor="api"):
            raise ApiError(409, "not_failed", f"Only failed messages can be retried; this one is {message.status}.")
        message.refresh_from_db()
        return Response(MessageSerializer(message).data, status=202)


class ConversationMessageListApi(GenericAPIView):
    serializer_class = MessageSerializer
    pagination_class = CursorPage.ordered_by("created_at", "id")

    @extend_schema(
        summary="The messages of a conversation, oldest first",
        responses={200: MessageSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request, conversation_id: int):
        if conversation_get(account=request.user, conversation_id=conversation_id) is None:
            raise NotFound("No such conversation.")
        page = self.paginate_queryset(
            message_list_for_conversation(account=request.user, conversation_id=conversation_id)
        )
        return self.get_paginated_response(MessageSerializer(page, many=True).data)
