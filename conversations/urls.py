from django.urls import path

from conversations import apis

urlpatterns = [
    path("conversations", apis.ConversationListApi.as_view(), name="conversation-list"),
    path("conversations/<id:conversation_id>", apis.ConversationDetailApi.as_view(), name="conversation-detail"),
    path("contacts", apis.ContactListApi.as_view(), name="contact-list"),
    path("contacts/<id:contact_id>", apis.ContactDetailApi.as_view(), name="contact-detail"),
    path("contacts/<id:contact_id>/merge", apis.ContactMergeApi.as_view(), name="contact-merge"),
    path("opt-outs", apis.OptOutListApi.as_view(), name="optout-list"),
    path("opt-outs/<id:optout_id>", apis.OptOutDetailApi.as_view(), name="optout-detail"),
    path("suppressions", apis.SuppressionListApi.as_view(), name="suppression-list"),
    path("suppressions/<id:suppression_id>", apis.SuppressionDetailApi.as_view(), name="suppression-detail"),
]
