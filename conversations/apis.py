from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from config.errors import ERROR_RESPONSES, WRITE_ERROR_RESPONSES, ApiError
from config.pagination import CursorPage
from conversations.addresses import AddressKind, address_kind, normalize_email, normalize_phone
from conversations.selectors import contact_get, contact_list, conversation_get, conversation_list
from conversations.serializers import (
    ContactMergeSerializer,
    ContactSerializer,
    ContactUpdateSerializer,
    ContactWriteSerializer,
    ConversationSerializer,
)
from conversations.services import (
    AddressIsSender,
    AddressTaken,
    ContactError,
    ContactGone,
    contact_create,
    contact_delete,
    contact_merge,
    contact_update,
)


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


# --- Contacts -------------------------------------------------------------------------

_ADDRESS_IN_USE = OpenApiResponse(
    ERROR_RESPONSES[400].response, description="An address belongs to another contact (merge them instead)"
)
_WRITE_RESPONSES = {**WRITE_ERROR_RESPONSES, 409: _ADDRESS_IN_USE}
_ADDRESS_FILTER = OpenApiParameter(
    "address",
    str,
    OpenApiParameter.QUERY,
    description="Only the contact holding this phone number (E.164; write `+` as `%2B`) or email address, "
    "normalised as on sends.",
)


def _contact_answer(request, contact_id: int, status: int = 200) -> Response:
    return Response(ContactSerializer(_contact_or_404(request, contact_id)).data, status=status)


def _contact_or_404(request, contact_id: int):
    contact = contact_get(account=request.user, contact_id=contact_id)
    if contact is None:
        raise NotFound("No such contact.")
    return contact


def _refused(exc: ContactError) -> Exception:
    if isinstance(exc, ContactGone):
        return NotFound("No such contact.")
    if isinstance(exc, AddressTaken):
        fields: dict[str, list[str]] = {}
        for holder in exc.holders:
            fields.setdefault(_field_of(holder.address), []).append(
                f"{holder.address} belongs to contact {holder.contact_id}"
            )
        return ApiError(
            409,
            "address_in_use",
            "An address belongs to another contact of this account; merge the two contacts instead.",
            fields,
        )
    if isinstance(exc, AddressIsSender):
        fields = {}
        for address in exc.addresses:
            fields.setdefault(_field_of(address), []).append(f"{address} is one of this account's sender addresses")
        return ApiError(400, "invalid_request", "A contact cannot have the account's own addresses.", fields)
    return ApiError(400, "invalid_request", str(exc), {"contact_id": [str(exc)]})


def _field_of(address: str) -> str:
    return "phone_numbers" if address_kind(address) is AddressKind.PHONE else "email_addresses"


class ContactListApi(GenericAPIView):
    serializer_class = ContactSerializer
    pagination_class = CursorPage.ordered_by("-id")

    @extend_schema(
        summary="List contacts, newest first",
        parameters=[_ADDRESS_FILTER],
        responses={200: ContactSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        address = request.query_params.get("address")
        if address is not None:
            address = _normalized_query_address(address)
        page = self.paginate_queryset(contact_list(account=request.user, address=address))
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a contact",
        description="Its addresses take their conversations, past and future. An address held by an automatic "
        "contact (one threading made) moves here; one held by another contact is a 409.",
        request=ContactWriteSerializer,
        responses={201: ContactSerializer, **_WRITE_RESPONSES},
    )
    def post(self, request):
        serializer = ContactWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            contact = contact_create(
                account=request.user,
                name=data.get("name", ""),
                addresses=[*data.get("phone_numbers", ()), *data.get("email_addresses", ())],
            )
        except ContactError as exc:
            raise _refused(exc) from None
        return _contact_answer(request, contact.pk, status=201)


def _normalized_query_address(value: str) -> str:
    try:
        return normalize_email(value) if "@" in value else normalize_phone(value)
    except DjangoValidationError as exc:
        raise ValidationError({"address": exc.messages}) from None


class ContactDetailApi(GenericAPIView):
    serializer_class = ContactSerializer

    @extend_schema(summary="One contact", responses={200: ContactSerializer, **ERROR_RESPONSES})
    def get(self, request, contact_id: int):
        return _contact_answer(request, contact_id)

    @extend_schema(
        summary="Change a contact",
        description="Give any of name, phone_numbers, email_addresses. A list replaces that kind of address as a "
        "whole: addresses added take their conversations, addresses dropped leave theirs without a contact.",
        request=ContactUpdateSerializer,
        responses={200: ContactSerializer, **_WRITE_RESPONSES},
    )
    def patch(self, request, contact_id: int):
        contact = _contact_or_404(request, contact_id)
        serializer = ContactUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            contact_update(
                contact=contact,
                name=data.get("name"),
                phone_numbers=data.get("phone_numbers"),
                email_addresses=data.get("email_addresses"),
            )
        except ContactError as exc:
            raise _refused(exc) from None
        return _contact_answer(request, contact_id)

    @extend_schema(
        summary="Delete a contact",
        description="Its addresses go with it; its conversations and messages stay, with no contact.",
        responses={204: None, **ERROR_RESPONSES},
    )
    def delete(self, request, contact_id: int):
        contact_delete(contact=_contact_or_404(request, contact_id))
        return Response(status=204)


class ContactMergeApi(GenericAPIView):
    serializer_class = ContactSerializer

    @extend_schema(
        summary="Merge another contact into this one",
        description="The other contact's addresses and conversations move to this one, which keeps its name (or "
        "takes the other's if it has none); the other is deleted. Both must be this account's.",
        request=ContactMergeSerializer,
        responses={200: ContactSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request, contact_id: int):
        contact = _contact_or_404(request, contact_id)
        serializer = ContactMergeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        other_id = serializer.validated_data["contact_id"]
        other = contact_get(account=request.user, contact_id=other_id)
        if other is None:
            raise ApiError(400, "invalid_request", "No such contact to merge.", {"contact_id": ["no such contact"]})
        try:
            contact_merge(contact=contact, other=other)
        except ContactError as exc:
            raise _refused(exc) from None
        return _contact_answer(request, contact_id)
