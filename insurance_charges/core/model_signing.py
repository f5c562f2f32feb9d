"""Ed25519 signatures over a model's pipeline and card, checked before any byte is unpickled.

Training signs with a private key kept outside the repository and the image; the service holds
only public keys (``TRUSTED_KEYS`` in the image, or ``MODEL_PUBLIC_KEY``) and loads a model only
if one of them signed exactly these pipeline and card bytes. A pickle with a card that merely
matches its checksum, as anyone can write, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The public half of the key that signed the committed model (docs/security.md#model-signing).
TRUSTED_KEYS = Path(__file__).resolve().parent / "trusted-model-keys.pem"
FORMAT = "insurance-charges-signature/1"
_PEM_END = b"-----END PUBLIC KEY-----"


class SignatureError(ValueError):
    """The model is unsigned, or not signed by a trusted key; the message says which."""


@dataclass(frozen=True)
class TrustedKey:
    """A public key the service accepts signatures from, and its short id."""

    key_id: str
    key: Ed25519PublicKey


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key: names it in files and logs."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def read_public_keys(pem: bytes) -> tuple[TrustedKey, ...]:
    """Every Ed25519 public key in a PEM file (several allow a rotation); ValueError if none."""
    keys = []
    for block in pem.split(_PEM_END)[:-1]:
        loaded = serialization.load_pem_public_key(block + _PEM_END)
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError("holds a public key that is not Ed25519")
        keys.append(TrustedKey(key_id(loaded), loaded))
    if not keys:
        raise ValueError("holds no PEM public key")
    return tuple(keys)


def signature_path(pipeline_path: Path) -> Path:
    """The signature's path beside a pipeline file: ``name.pkl`` -> ``name.sig.json``."""
    return pipeline_path.with_name(pipeline_path.stem + ".sig.json")


def _message(pipeline_sha256: str, card_sha256: str) -> bytes:
    return (f"{FORMAT}\npipeline_sha256={pipeline_sha256}\ncard_sha256={card_sha256}\n").encode(
        "ascii"
    )


def sign(private_key: Ed25519PrivateKey, pipeline: bytes, card: bytes) -> dict:
    """The signature document for these pipeline and card bytes."""
    pipeline_sha, card_sha = hashlib.sha256(pipeline).hexdigest(), hashlib.sha256(card).hexdigest()
    signature = private_key.sign(_message(pipeline_sha, card_sha))
    return {
        "format": FORMAT,
        "algorithm": "Ed25519",
        "key_id": key_id(private_key.public_key()),
        "pipeline_sha256": pipeline_sha,
        "card_sha256": card_sha,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def write_signature(private_key: Ed25519PrivateKey, pipeline_path: Path, card_path: Path) -> Path:
    """Sign the files as they are on disk and write the signature beside the pipeline."""
    document = sign(private_key, pipeline_path.read_bytes(), card_path.read_bytes())
    target = signature_path(pipeline_path)
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return target


def verify(document: bytes, pipeline: bytes, card: bytes, trusted: tuple[TrustedKey, ...]) -> str:
    """Check the signature over exactly these bytes; return the signing key's id."""
    try:
        signed = json.loads(document)
        signature = base64.b64decode(signed["signature"], validate=True)
        claimed = signed["key_id"]
    except (ValueError, KeyError, TypeError):
        raise SignatureError("its signature file is not a signature document") from None
    keys = [k for k in trusted if k.key_id == claimed]
    if not keys:
        raise SignatureError(
            f"it is signed by key {str(claimed)[:16]}, which this service does "
            "not trust (trusted: " + ", ".join(k.key_id for k in trusted) + ")"
        )
    message = _message(hashlib.sha256(pipeline).hexdigest(), hashlib.sha256(card).hexdigest())
    try:
        keys[0].key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError(
            "its signature does not match the pipeline and card (changed after signing?)"
        ) from None
    return keys[0].key_id
