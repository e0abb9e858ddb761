import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from providers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, SendGridProvider
from providers.twilio import TwilioProvider, twilio_signature

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOKEN = "twilio-test-token"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text().strip()


def twilio(**options) -> TwilioProvider:
    options = {"base_url": "https://twilio.test", "account_sid": "AC1", "auth_token": TOKEN} | options
    return TwilioProvider("twilio", options=options, callback_base_url="https://svc.test", timeout=1)


class EcKey:
    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.public_b64 = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str | None = None) -> dict:
        timestamp = timestamp or str(int(time.time()))
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER.lower(): base64.b64encode(signature).decode(), TIMESTAMP_HEADER.lower(): timestamp}


def sendgrid(*keys: EcKey) -> SendGridProvider:
    options = {"base_url": "https://sendgrid.test", "api_key": "SG.test", "public_keys": [k.public_b64 for k in keys]}
    return SendGridProvider("sendgrid", options=options, callback_base_url="https://svc.test", timeout=1)


def twilio_form(name: str) -> dict[str, list[str]]:
    return parse_qs(fixture(name), keep_blank_values=True)


def twilio_signed_headers(url: str, form: dict[str, list[str]], token: str = TOKEN) -> dict:
    return {"x-twilio-signature": twilio_signature(token, url, form)}


def sendgrid_body(name: str, **changes) -> bytes:
    events = json.loads(fixture(name))
    return json.dumps([e | changes for e in events]).encode()
