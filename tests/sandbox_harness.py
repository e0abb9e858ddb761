"""The provider sandbox served in-process: the adapters' real HTTP requests (through
`requests`) are routed by `responses` to the sandbox views via Django's test client,
and the sandbox's callbacks come back to our webhooks the same way. No network, no
worker: the whole delivery path runs synchronously inside one test.
"""

import re
import time
from urllib.parse import urlsplit

import requests
import responses
from django.conf import settings
from django.test import Client

from messaging.models import Message
from messaging.services import message_dispatch
from providers.sandbox.callbacks import callbacks_send
from providers.sandbox.calls import call_incoming_new, call_run
from providers.sandbox.models import SandboxCall, SandboxMessage


class InProcessSandbox:
    def __init__(self, mock: responses.RequestsMock):
        self.client = Client()
        self.calls = 0
        pattern = re.compile(rf"^{re.escape(settings.PUBLIC_BASE_URL)}/")
        for method in ("GET", "POST"):
            mock.add_callback(method, pattern, callback=self._forward)
        self._delivered: set[int] = set()
        self._ran: set[int] = set()

    def _forward(self, request: requests.PreparedRequest):
        self.calls += 1
        started = time.monotonic()
        answer = forward(self.client, request, urlsplit(request.url).path)
        # Honour the client's timeout as a socket would: the provider may have acted on
        # the request, but the caller never hears the answer.
        if time.monotonic() - started > settings.PROVIDER_TIMEOUT_SECONDS:
            raise requests.ReadTimeout(f"read timed out after {settings.PROVIDER_TIMEOUT_SECONDS}s")
        return answer

    def deliver_callbacks(self) -> None:
        """What the sandbox's callback task does, for every message it accepted and every
        call it placed or was given."""
        for message in SandboxMessage.objects.exclude(pk__in=self._delivered).order_by("id"):
            callbacks_send(message=message)
            self._delivered.add(message.pk)
        for call in SandboxCall.objects.exclude(pk__in=self._ran).order_by("id"):
            call_run(call=call)
            self._ran.add(call.pk)

    def call_in(self, *, from_address: str, to_address: str, speech: str, label: str = "twilio-voice") -> SandboxCall:
        """Someone calls one of our numbers and leaves `speech` as a voicemail."""
        call = call_incoming_new(label=label, from_address=from_address, to_address=to_address, speech=speech)
        self.deliver_callbacks()
        return SandboxCall.objects.get(pk=call.pk)

    def calls_to(self, address: str) -> int:
        return SandboxCall.objects.filter(to_address=address).count()

    def drain(self, message_id: int, *, max_rounds: int = 20) -> Message:
        """Act as the worker until the message stops changing: dispatch each due try
        (skipping the waits), then let the sandbox post its receipts."""
        for _ in range(max_rounds):
            message = Message.objects.get(pk=message_id)
            if message.status != Message.Status.QUEUED:
                break
            Message.objects.filter(pk=message_id).update(next_attempt_at=None)
            message_dispatch(message_id=message_id)
        self.deliver_callbacks()
        return Message.objects.get(pk=message_id)

    def sent_to(self, address: str) -> int:
        return SandboxMessage.objects.filter(to_address=address).count()


def forward(client: Client, request: requests.PreparedRequest, path: str) -> tuple[int, dict, bytes]:
    """Serve an outgoing `requests` request from our app at `path`, as `responses` wants it."""
    query = urlsplit(request.url).query
    headers = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in request.headers.items()
        if name.lower() not in ("content-type", "content-length")
    }
    response = client.generic(
        request.method,
        path + (f"?{query}" if query else ""),
        data=request.body or b"",
        content_type=request.headers.get("Content-Type", ""),
        **headers,
    )
    return response.status_code, dict(response.items()), response.content
