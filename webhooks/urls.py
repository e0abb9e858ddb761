from django.urls import path

from webhooks import apis, endpoint_apis

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
    path("webhook-endpoints", endpoint_apis.EndpointListApi.as_view(), name="webhook-endpoint-list"),
    path(
        "webhook-endpoints/<id:endpoint_id>", endpoint_apis.EndpointDetailApi.as_view(), name="webhook-endpoint-detail"
    ),
    path(
        "webhook-endpoints/<id:endpoint_id>/rotate-secret",
        endpoint_apis.EndpointSecretRotateApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<id:endpoint_id>/deliveries",
        endpoint_apis.EndpointDeliveryListApi.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "webhook-endpoints/<id:endpoint_id>/replay",
        endpoint_apis.EndpointReplayApi.as_view(),
        name="webhook-endpoint-replay",
    ),
    path("events/<str:event_id>/replay", endpoint_apis.EventReplayApi.as_view(), name="event-replay"),
]
