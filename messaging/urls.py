from django.urls import path

from messaging import apis

urlpatterns = [
    path("messages/sms", apis.SmsSendApi.as_view(), name="message-send-sms"),
    path("messages/email", apis.EmailSendApi.as_view(), name="message-send-email"),
    path("messages/voice", apis.VoiceSendApi.as_view(), name="message-send-voice"),
    path("messages/batch", apis.BatchSendApi.as_view(), name="message-send-batch"),
    path("messages/<id:message_id>", apis.MessageDetailApi.as_view(), name="message-detail"),
    path("messages/<id:message_id>/retry", apis.MessageRetryApi.as_view(), name="message-retry"),
    path("messages/<id:message_id>/cancel", apis.MessageCancelApi.as_view(), name="message-cancel"),
    path(
        "conversations/<id:conversation_id>/messages",
        apis.ConversationMessageListApi.as_view(),
        name="conversation-messages",
    ),
    path("contacts/<id:contact_id>/messages", apis.ContactMessageListApi.as_view(), name="contact-messages"),
]
