from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import Conversation


class LastMessageSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="last_message_at")
    preview = serializers.CharField(source="last_message_preview")
    direction = serializers.CharField(source="last_message_direction")
    type = serializers.CharField(source="last_message_type")


class ConversationSerializer(serializers.ModelSerializer):
    participants = serializers.ListField(child=serializers.CharField(), read_only=True)
    last_message = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "channel", "participants", "contact_id", "message_count", "last_message", "created_at"]

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, conversation: Conversation) -> dict | None:
        if conversation.last_message_at is None:
            return None
        # Built directly: a nested serializer per row cost most of a list page's time.
        return {
            "at": _DATETIME.to_representation(conversation.last_message_at),
            "preview": conversation.last_message_preview,
            "direction": conversation.last_message_direction,
            "type": conversation.last_message_type,
        }


_DATETIME = serializers.DateTimeField()
