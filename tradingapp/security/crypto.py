"""Encryption at rest of broker account secrets: Fernet tokens under SECRETS_ENCRYPTION_KEYS
(MultiFernet: the first key encrypts, every key decrypts, `rotate` re-encrypts under the first).
Key rotation and the development-only derived key: README.md, "Broker accounts", and build_box.
"""

from __future__ import annotations

import base64
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from config import GENERATE_FERNET_KEY

log = logging.getLogger(__name__)

DERIVATION_INFO = b"tradingapp broker account secrets v1"
EXTENSION_KEY = "tradingapp.secret_box"


class SecretsUnavailable(RuntimeError):
    """No key to encrypt or decrypt with, or a stored secret that none of the keys opens."""


class SecretBox:
    """Encrypts and decrypts short text secrets; ciphertexts are ASCII Fernet tokens."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([self._primary, *(Fernet(key) for key in keys[1:])])

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsUnavailable(_UNREADABLE) from None

    def is_current(self, token: str) -> bool:
        """Whether the first (encrypting) key opens it: nothing to rotate."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretsUnavailable(_UNREADABLE) from None


_UNREADABLE = (
    "a stored broker secret opens with none of SECRETS_ENCRYPTION_KEYS (was the key that encrypted it "
    "removed before `flask accounts rotate-keys` re-encrypted everything?)"
)


def derive_key(secret: str) -> str:
    """A Fernet key derived from another secret (development and test only)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw).decode("ascii")


# Outside production an empty key list means one key derived from JWT_SECRET: stable across
# restarts and the same in every process of a deployment (a random key would make yesterday's
# secrets unreadable and differ between the backend and the worker), with a warning. Production
# never derives: without keys nothing is encrypted or decrypted (SecretsUnavailable), and with
# BROKER=xts it refuses to start (config.py).
def build_box(config) -> SecretBox:
    if config.SECRETS_ENCRYPTION_KEYS:
        return SecretBox(config.SECRETS_ENCRYPTION_KEYS)
    if config.ENV_NAME == "production":
        raise SecretsUnavailable(
            "SECRETS_ENCRYPTION_KEYS is not set: broker account secrets cannot be stored or read. "
            f"The operator sets it to a Fernet key; generate one with: {GENERATE_FERNET_KEY}"
        )
    log.warning(
        "event=secrets_key_derived env=%s note=broker account secrets are encrypted with a key derived from "
        "JWT_SECRET; set SECRETS_ENCRYPTION_KEYS (production requires it)",
        config.ENV_NAME,
    )
    return SecretBox([derive_key(config.JWT_SECRET)])


def secret_box() -> SecretBox:
    """The app's box, built on first use (so a server without keys runs until a secret is needed)."""
    box = current_app.extensions.get(EXTENSION_KEY)
    if box is None:
        box = current_app.extensions[EXTENSION_KEY] = build_box(current_app.extensions["tradingapp.config"])
    return box
