from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from config.errors import CREATE_ERROR_RESPONSES, ERROR_RESPONSES, WRITE_ERROR_RESPONSES, ApiError
from config.pagination import CursorPage
from conversations.addresses import AddressKind, address_kind, normalize_email, normalize_phone
from conversations.fields import validated
from conversations.models import OptOut, Suppression
from conversations.selectors import (
    account_owns_address,
    contact_get,
    contact_list,
    conversation_get,
    conversation_list,
    optout_get,
    optout_list,
    suppression_get,
    suppression_list,
)
from conversations.serializers import (
    ContactMergeSerializer,
    ContactSerializer,
    ContactUpdateSerializer,
    ContactWriteSerializer,
    ConversationSerializer,
    OptOutSerializer,
    OptOutWriteSerializer,
    SuppressionSerializer,
    SuppressionWriteSerializer,
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
    optout_add,
    optout_delete,
    suppression_add,
    suppression_delete,
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


# --- Consent: opt-outs and suppressions ---------------------------------------------------

_SENDER_FILTER = OpenApiParameter(
    "sender", str, OpenApiParameter.QUERY, description="Only opt-outs from this sender number (E.164, `+` as `%2B`)."
)
_OPTOUT_ADDRESS_FILTER = OpenApiParameter(
    "address", str, OpenApiParameter.QUERY, description="Only opt-outs of this number (E.164, `+` as `%2B`)."
)
_SUPPRESSION_ADDRESS_FILTER = OpenApiParameter(
    "address", str, OpenApiParameter.QUERY, description="Only the suppression of this email address."
)
_REASON_FILTER = OpenApiParameter(
    "reason",
    str,
    OpenApiParameter.QUERY,
    enum=Suppression.Reason.values,
    description="Only suppressions for this reason.",
)


def _query_phone(request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return normalize_phone(value)
    except DjangoValidationError as exc:
        raise ValidationError({name: exc.messages}) from None


class OptOutListApi(GenericAPIView):
    serializer_class = OptOutSerializer
    pagination_class = CursorPage.ordered_by("-id")

    @extend_schema(
        summary="List opt-outs, newest first",
        description="Numbers that replied STOP (or a synonym) to one of the account's numbers, or that the account "
        "opted out itself. A send from that number to them is refused (`recipient_opted_out`) until they reply "
        "START or the opt-out is deleted.",
        parameters=[_SENDER_FILTER, _OPTOUT_ADDRESS_FILTER],
        responses={200: OptOutSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        optouts = optout_list(
            account=request.user, sender=_query_phone(request, "sender"), address=_query_phone(request, "address")
        )
        return self.get_paginated_response(OptOutSerializer(self.paginate_queryset(optouts), many=True).data)

    @extend_schema(
        summary="Opt a number out of one of the account's senders",
        description="As if it had replied STOP, without a reply. 201 when new; 200 with the existing opt-out.",
        request=OptOutWriteSerializer,
        responses={201: OptOutSerializer, 200: OptOutSerializer, **CREATE_ERROR_RESPONSES},
    )
    def post(self, request):
        data = validated(OptOutWriteSerializer, request.data)
        if not account_owns_address(account=request.user, address=data["sender"]):
            raise ApiError(
                403,
                "sender_not_allowed",
                f"This account does not own {data['sender']}.",
                {"sender": ["not owned by this account"]},
            )
        optout, created = optout_add(
            account=request.user, sender=data["sender"], address=data["address"], source=OptOut.Source.API
        )
        return Response(OptOutSerializer(optout).data, status=201 if created else 200)


class OptOutDetailApi(GenericAPIView):
    serializer_class = OptOutSerializer

    @extend_schema(summary="One opt-out", responses={200: OptOutSerializer, **ERROR_RESPONSES})
    def get(self, request, optout_id: int):
        return Response(OptOutSerializer(self._get(request, optout_id)).data)

    @extend_schema(
        summary="Delete an opt-out",
        description="Sends to that number from that sender are accepted again. Only do this with the recipient's "
        "consent (it can also reply START).",
        responses={204: None, **ERROR_RESPONSES},
    )
    def delete(self, request, optout_id: int):
        optout_delete(optout=self._get(request, optout_id))
        return Response(status=204)

    @staticmethod
    def _get(request, optout_id: int) -> OptOut:
        optout = optout_get(account=request.user, optout_id=optout_id)
        if optout is None:
            raise NotFound("No such opt-out.")
        return optout


class SuppressionListApi(GenericAPIView):
    serializer_class = SuppressionSerializer
    pagination_class = CursorPage.ordered_by("-id")

    @extend_schema(
        summary="List suppressed email addresses, newest first",
        description="Addresses that bounced for good, were invalid, reported spam or unsubscribed (from the email "
        "provider's events), or that the account added. A send to one is refused (`recipient_suppressed`).",
        parameters=[_SUPPRESSION_ADDRESS_FILTER, _REASON_FILTER],
        responses={200: SuppressionSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        reason = request.query_params.get("reason")
        if reason is not None and reason not in Suppression.Reason.values:
            raise ValidationError({"reason": [f"Must be one of {', '.join(Suppression.Reason.values)}."]})
        address = request.query_params.get("address")
        if address is not None:
            address = _normalized_query_address(address)
        suppressions = suppression_list(account=request.user, address=address, reason=reason)
        return self.get_paginated_response(SuppressionSerializer(self.paginate_queryset(suppressions), many=True).data)

    @extend_schema(
        summary="Suppress an email address",
        description="Its reason is `manual`. 201 when new; 200 with the existing suppression (and its reason).",
        request=SuppressionWriteSerializer,
        responses={201: SuppressionSerializer, 200: SuppressionSerializer, **WRITE_ERROR_RESPONSES},
    )
    def post(self, request):
        data = validated(SuppressionWriteSerializer, request.data)
        suppression, created = suppression_add(
            account=request.user, address=data["address"], reason=Suppression.Reason.MANUAL, detail={"by": "api"}
        )
        return Response(SuppressionSerializer(suppression).data, status=201 if created else 200)


class SuppressionDetailApi(GenericAPIView):
    serializer_class = SuppressionSerializer

    @extend_schema(summary="One suppression", responses={200: SuppressionSerializer, **ERROR_RESPONSES})
    def get(self, request, suppression_id: int):
        return Response(SuppressionSerializer(self._get(request, suppression_id)).data)

    @extend_schema(
        summary="Delete a suppression",
        description="Sends to the address are accepted again. A hard bounce will likely bounce again.",
        responses={204: None, **ERROR_RESPONSES},
    )
    def delete(self, request, suppression_id: int):
        suppression_delete(suppression=self._get(request, suppression_id))
        return Response(status=204)

    @staticmethod
    def _get(request, suppression_id: int) -> Suppression:
        suppression = suppression_get(account=request.user, suppression_id=suppression_id)
        if suppression is None:
            raise NotFound("No such suppression.")
        return suppression
