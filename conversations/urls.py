from django.urls import path

from conversations import apis

urlpatterns = [
    path("conversations", apis.ConversationListApi.as_view(), name="conversation-list"),
    path("conversations/<id:conversation_id>", apis.ConversationDetailApi.as_view(), name="conversation-detail"),
    path("contacts", apis.ContactListApi.as_view(), name="contact-list"),
    path("contacts/<id:contact_id>", apis.ContactDetailApi.as_view(), name="contact-detail"),
    path("contacts/<id:contact_id>/merge", apis.ContactMergeApi.as_view(), name="contact-merge"),
]
