"""The benchmark's ceiling: the least a DRF POST can do in this server.

Mounted only when BENCH_CEILING=true (`make bench` sets it). It parses JSON, validates a
serializer shaped like a send and answers 200: no authentication, no rate limit, no
database, no broker. Our own endpoints are reported as a fraction of what this one does.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class CeilingSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=254)
    type = serializers.ChoiceField(choices=["sms", "mms"], default="sms")
    body = serializers.CharField(max_length=1600, allow_blank=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(max_length=254)
        return fields


@extend_schema(exclude=True)
class CeilingApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        serializer = CeilingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"ok": True, "to": serializer.validated_data["to"]})
