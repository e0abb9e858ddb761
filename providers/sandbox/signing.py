"""The sandbox's signing keys. Twilio-format callbacks are signed with the instance's
auth token, exactly as Twilio does; SendGrid-format events with an ECDSA key derived
from SECRET_KEY, whose public half the SendGrid adapters trust when the sandbox is on."""

import base64
import hashlib
from functools import cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings


@cache
def _private_key() -> ec.EllipticCurvePrivateKey:
    seed = hashlib.sha256(b"sandbox-sendgrid-event-key:" + settings.SECRET_KEY.encode()).digest()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256
    return ec.derive_private_key(int.from_bytes(seed, "big") % (order - 1) + 1, ec.SECP256R1())


def sendgrid_public_key() -> str:
    der = _private_key().public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sendgrid_sign(timestamp: str, body: bytes) -> str:
    signature = _private_key().sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()
