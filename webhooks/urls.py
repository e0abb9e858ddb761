from django.urls import path

from webhooks import apis

urlpatterns = [
    path("webhooks/sms", apis.SmsWebhookApi.as_view(), name="webhook-sms"),
    path("webhooks/email", apis.EmailWebhookApi.as_view(), name="webhook-email"),
    path(
        "webhooks/providers/<slug:name>/status", apis.ProviderStatusWebhookApi.as_view(), name="webhook-provider-status"
    ),
    path("webhooks/providers/<slug:name>/voice", apis.ProviderVoiceWebhookApi.as_view(), name="webhook-provider-voice"),
    path(
        "webhooks/providers/<slug:name>/twiml",
        apis.ProviderCallInstructionsApi.as_view(),
        name="webhook-provider-twiml",
    ),
    path(
        "webhooks/providers/<slug:name>/inbound",
        apis.ProviderInboundWebhookApi.as_view(),
        name="webhook-provider-inbound",
    ),
]
