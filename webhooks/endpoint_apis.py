"""Our API consumers' webhook endpoints (docs/webhooks.md): register, list, change,
delete, rotate the secret, read the delivery log, replay. Always within the caller's
account: another account's endpoint or event is a 404."""

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from config.errors import ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from config.pagination import CursorPage
from messaging.fields import validated
from webhooks.deliveries import deliveries_replay_failed, event_replay
from webhooks.endpoints import (
    EndpointError,
    UnknownEventTypes,
    endpoint_create,
    endpoint_delete,
    endpoint_secret_rotate,
    endpoint_update,
)
from webhooks.models import WebhookEndpoint
from webhooks.selectors import delivery_list, endpoint_get, endpoint_list, event_get
from webhooks.serializers import (
    DeliverySerializer,
    EventReplaySerializer,
    ReplayedSerializer,
    ReplayFailedSerializer,
    SecretRotateSerializer,
    WebhookEndpointSecretSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWriteSerializer,
)

TAGS = ["webhook endpoints"]


def _refused(exc: EndpointError) -> ValidationError:
    field = "event_types" if isinstance(exc, UnknownEventTypes) else "url"
    return ValidationError({field: [str(exc)]})


def _endpoint(request, endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoint_get(account=request.user, endpoint_id=endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


class EndpointListApi(GenericAPIView):
    serializer_class = WebhookEndpointSerializer
    pagination_class = CursorPage.ordered_by("-id")

    @extend_schema(
        tags=TAGS,
        summary="List the account's webhook endpoints, newest first",
        responses={200: WebhookEndpointSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        endpoints = self.paginate_queryset(endpoint_list(account=request.user))
        return self.get_paginated_response(WebhookEndpointSerializer(endpoints, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Register a webhook endpoint",
        description="Events of the listed types (all, if none are listed) are posted to `url`, signed as Standard "
        "Webhooks specifies. The answer carries the signing `secret`: it is shown only here and when rotated.",
        request=WebhookEndpointWriteSerializer,
        responses={201: WebhookEndpointSecretSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request):
        data = validated(WebhookEndpointWriteSerializer, request.data)
        try:
            endpoint = endpoint_create(account=request.user, **data)
        except EndpointError as exc:
            raise _refused(exc) from None
        return Response(WebhookEndpointSecretSerializer(endpoint).data, status=201)


class EndpointDetailApi(GenericAPIView):
    serializer_class = WebhookEndpointSerializer

    @extend_schema(
        tags=TAGS, summary="One webhook endpoint", responses={200: WebhookEndpointSerializer, **ERROR_RESPONSES}
    )
    def get(self, request, endpoint_id: int):
        return Response(WebhookEndpointSerializer(_endpoint(request, endpoint_id)).data)

    @extend_schema(
        tags=TAGS,
        summary="Change a webhook endpoint",
        description="Any of `url`, `event_types`, `enabled`, `description`. Enabling an endpoint that was disabled "
        "for failing clears its reason; replay what it missed with `POST /api/webhook-endpoints/{id}/replay`.",
        request=WebhookEndpointUpdateSerializer,
        responses={200: WebhookEndpointSerializer, **WRITE_ERROR_RESPONSES},
    )
    def patch(self, request, endpoint_id: int):
        endpoint = _endpoint(request, endpoint_id)
        serializer = WebhookEndpointUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = endpoint_update(endpoint=endpoint, **serializer.validated_data)
        except EndpointError as exc:
            raise _refused(exc) from None
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        tags=TAGS,
        summary="Delete a webhook endpoint",
        description="With its delivery log; nothing more is posted to it.",
        responses={204: None, **ERROR_RESPONSES},
    )
    def delete(self, request, endpoint_id: int):
        endpoint_delete(endpoint=_endpoint(request, endpoint_id))
        return Response(status=204)


class EndpointSecretRotateApi(GenericAPIView):
    serializer_class = WebhookEndpointSecretSerializer

    @extend_schema(
        tags=TAGS,
        summary="Rotate an endpoint's signing secret",
        description="A new secret, shown once in the answer. For `overlap_seconds` (default 24 hours) the old "
        "secret signs too: each delivery's `webhook-signature` carries both signatures, so a consumer verifies "
        "with either while it switches.",
        request=SecretRotateSerializer,
        responses={200: WebhookEndpointSecretSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request, endpoint_id: int):
        endpoint = _endpoint(request, endpoint_id)
        data = validated(SecretRotateSerializer, request.data or {})
        endpoint = endpoint_secret_rotate(endpoint=endpoint, overlap_seconds=data.get("overlap_seconds"))
        return Response(WebhookEndpointSecretSerializer(endpoint).data)


class EndpointDeliveryListApi(GenericAPIView):
    serializer_class = DeliverySerializer
    pagination_class = CursorPage.ordered_by("-id")

    @extend_schema(
        tags=TAGS,
        summary="An endpoint's delivery log, newest first",
        description="Each event posted (or to be posted) to the endpoint: its state, tries, and what the last try "
        "got back (status code, latency, the start of the answer).",
        responses={200: DeliverySerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request, endpoint_id: int):
        deliveries = self.paginate_queryset(delivery_list(endpoint=_endpoint(request, endpoint_id)))
        return self.get_paginated_response(DeliverySerializer(deliveries, many=True).data)


class EndpointReplayApi(GenericAPIView):
    serializer_class = ReplayedSerializer

    @extend_schema(
        tags=TAGS,
        summary="Replay an endpoint's failed deliveries since a time",
        description="Every delivery to the endpoint that failed at or after `since` is posted again (same "
        "`webhook-id`), with a fresh retry schedule.",
        request=ReplayFailedSerializer,
        responses={202: ReplayedSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request, endpoint_id: int):
        endpoint = _endpoint(request, endpoint_id)
        data = validated(ReplayFailedSerializer, request.data)
        return Response({"replayed": deliveries_replay_failed(since=data["since"], endpoint=endpoint)}, status=202)


class EventReplayApi(GenericAPIView):
    serializer_class = ReplayedSerializer

    @extend_schema(
        tags=TAGS,
        summary="Replay one event",
        description="Posts the event (`evt_…`, the `webhook-id` of its deliveries) again to every endpoint it went "
        "to, or only to `endpoint_id`.",
        request=EventReplaySerializer,
        responses={202: ReplayedSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request, event_id: str):
        event = event_get(account=request.user, public_id=event_id)
        if event is None:
            raise NotFound("No such event.")
        data = validated(EventReplaySerializer, request.data or {})
        endpoint = None
        if "endpoint_id" in data:
            endpoint = endpoint_get(account=request.user, endpoint_id=data["endpoint_id"])
            if endpoint is None:
                raise ValidationError({"endpoint_id": ["No such webhook endpoint."]})
        return Response({"replayed": event_replay(event=event, endpoint=endpoint)}, status=202)
