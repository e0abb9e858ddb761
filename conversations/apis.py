from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from config.errors import ERROR_RESPONSES
from config.pagination import CursorPage
from conversations.selectors import conversation_get, conversation_list
from conversations.serializers import ConversationSerializer


class ConversationListApi(GenericAPIView):
    serializer_class = ConversationSerializer
    pagination_class = CursorPage.ordered_by("-last_message_at", "-id")

    @extend_schema(
        summary="List conversations, most recent activity first",
        responses={200: ConversationSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        page = self.paginate_queryset(conversation_list(account=request.user))
        return self.get_paginated_response(ConversationSerializer(page, many=True).data)


class ConversationDetailApi(GenericAPIView):
    serializer_class = ConversationSerializer

    @extend_schema(summary="One conversation", responses={200: ConversationSerializer, **ERROR_RESPONSES})
    def get(self, request, conversation_id: int):
        conversation = conversation_get(account=request.user, conversation_id=conversation_id)
        if conversation is None:
            raise NotFound("No such conversation.")
        return Response(ConversationSerializer(conversation).data)
