"""Encryption at rest for what must not be readable from a copy of the data folder: the
knowledge vault's secrets and the screenshots.

Sealing uses a public key, so capture and imports keep storing secrets and pictures while
the memory is locked; only opening needs the private key, which the user's key store holds
while the memory is unlocked. A sealed value is an X25519 exchange with a one-off key,
HKDF-SHA256 and AES-256-GCM (an ECIES "sealed box"), so each value has its own key and
nonce. Vault ids come from a keyed digest (the pepper), so not even a hash of a secret is
stored where a guess could be checked against it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Protocol

from app.errors import Locked

MAGIC = b"MLS1"
"""The first bytes of a sealed file: version 1 of the format."""
TEXT_PREFIX = "sealed:"
"""How a sealed value starts in a SQLite text column (base64 of the sealed bytes)."""
_NONCE = 12
_INFO = b"memlane sealed value v1"


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_INFO).derive(shared)


def pepper_of(private: bytes) -> bytes:
    """The key of the vault's id digest, derived from the private key, so unlocking
    restores it on a machine whose key store lost it."""
    return hmac.new(private, b"memlane vault ids", hashlib.sha256).digest()


def public_of(private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = X25519PrivateKey.from_private_bytes(private)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def new_private_key() -> bytes:
    return os.urandom(32)


def is_sealed(data: bytes) -> bool:
    return data.startswith(MAGIC)


@dataclass(frozen=True)
class Sealer:
    """The write half: seal with the public key, and the pepper for vault ids (None when
    this machine's key store lost it: ids are then random, never a hash of the secret)."""

    public: bytes
    pepper: bytes | None

    def seal(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.x25519 import (
            X25519PrivateKey,
            X25519PublicKey,
        )
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        ephemeral = X25519PrivateKey.generate()
        sent = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key = _derive(ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public)),
                      sent, self.public)
        nonce = os.urandom(_NONCE)
        return MAGIC + sent + nonce + AESGCM(key).encrypt(nonce, data, MAGIC)

    def seal_text(self, text: str) -> str:
        return TEXT_PREFIX + base64.b64encode(self.seal(text.encode())).decode()

    def digest(self, *parts: str) -> str:
        """A keyed digest for an id; random without the pepper (no de-duplication then,
        but nothing a guess could be checked against either)."""
        message = "\x1f".join(parts).encode()
        key = self.pepper or os.urandom(32)
        return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Opener:
    """The read half: the private key, present only while the memory is unlocked."""

    private: bytes

    def open(self, sealed: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.asymmetric.x25519 import (
            X25519PrivateKey,
            X25519PublicKey,
        )
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not is_sealed(sealed) or len(sealed) < len(MAGIC) + 32 + _NONCE + 16:
            raise Locked("this value is not sealed by Memlane, or is cut short")
        start = len(MAGIC)
        sent, nonce = sealed[start:start + 32], sealed[start + 32:start + 32 + _NONCE]
        key = _derive(X25519PrivateKey.from_private_bytes(self.private).exchange(
            X25519PublicKey.from_public_bytes(sent)), sent, public_of(self.private))
        try:
            return AESGCM(key).decrypt(nonce, sealed[start + 32 + _NONCE:], MAGIC)
        except InvalidTag as wrong:
            raise Locked("this value was sealed with another memory's key, or is "
                         "damaged") from wrong

    def open_text(self, text: str) -> str:
        if not text.startswith(TEXT_PREFIX):
            return text  # stored before sealing began, and not yet sealed
        return self.open(base64.b64decode(text[len(TEXT_PREFIX):])).decode()


class Keys(Protocol):
    """A memory's keys: the sealer always, the opener only while unlocked."""

    sealer: Sealer

    def opener(self) -> Opener:
        """The read half, or `Locked`."""
        ...
