from django.urls import path

from conversations import apis

urlpatterns = [
    path("conversations", apis.ConversationListApi.as_view(), name="conversation-list"),
    path("conversations/<id:conversation_id>", apis.ConversationDetailApi.as_view(), name="conversation-detail"),
]
