"""The data key: secrets at rest are sealed with it, and signing keys are derived from it.

Access-key secrets and webhook secrets are stored sealed (AES-256-GCM), so a copy of the
database alone reveals no secret. The 32-byte data key lives apart from the database: in
``OPENKVS_MASTER_KEY`` (URL-safe base64) or in a key file (``OPENKVS_KEY_FILE``, by default
``<data_dir>/openkvs.key``), created owner-only on first use. Every host of a fleet must be
given the same key.

A sealed value is ``v1:`` + base64url(nonce ‖ ciphertext ‖ tag); the purpose (e.g.
``access_key``) is bound as associated data, so a sealed value cannot be moved to a column
of another kind. Values written before sealing existed (no ``v1:`` prefix) are read as they
are; ``UserStore.seal_legacy`` reseals them at start-up.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkvs.store.permissions import DIR_MODE, FILE_MODE, warn_if_open

KEY_BYTES = 32
#: What every sealed value starts with (a legacy plain value never does).
SEALED_PREFIX = "v1:"
_PREFIX = SEALED_PREFIX
_NONCE = 12


class SecretsError(Exception):
    """The data key is missing, malformed, or does not open a sealed value."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
    except (ValueError, binascii.Error) as exc:
        raise SecretsError(f"{where}: not URL-safe base64") from exc
    if len(key) != KEY_BYTES:
        raise SecretsError(f"{where}: the data key must be {KEY_BYTES} bytes")
    return key


def new_key_text() -> str:
    """A fresh data key, as the text a key file or ``OPENKVS_MASTER_KEY`` holds."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii").rstrip("=")


def load_key(master_key: str, key_file: Path, *, create: bool = True) -> bytes:
    """The data key from ``master_key`` (if set), else from ``key_file``; a missing key file
    is created (mode 0600, its folder 0700) when ``create``, else :class:`SecretsError`.
    A key file that others may read is used, with an ``insecure_permissions`` warning."""
    if master_key:
        return _decode_key(master_key, "OPENKVS_MASTER_KEY")
    if not key_file.exists():
        if not create:
            raise SecretsError(f"{key_file} does not exist")
        _create_key_file(key_file)
    warn_if_open(key_file)
    try:
        text = key_file.read_text(encoding="ascii")
    except OSError as exc:
        raise SecretsError(f"{key_file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SecretsError(f"{key_file}: not URL-safe base64") from exc
    return _decode_key(text, str(key_file))


def _create_key_file(key_file: Path) -> None:
    """Write a new key to a private temporary file, then link it into place: a process
    starting at the same moment sees no key file or a complete one, and the first link
    wins (the loser uses the winner's key)."""
    key_file.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_key_text() + "\n")
            out.flush()
            os.fsync(out.fileno())
        # FileExistsError: another process created it meanwhile; use theirs.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, key_file)
    finally:
        tmp.unlink(missing_ok=True)


class Sealer:
    """Seals and opens secrets with the data key; derives purpose-bound subkeys."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretsError(f"the data key must be {KEY_BYTES} bytes")
        self._key = key
        self._aead = AESGCM(key)

    def seal(self, plain: str, purpose: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), purpose.encode("ascii"))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, purpose: str) -> str:
        """The plain secret of a stored value (a legacy unsealed value as it is)."""
        if not is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(_PREFIX) :].encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode("ascii"))
        except (ValueError, binascii.Error, InvalidTag) as exc:
            raise SecretsError(
                f"a sealed {purpose} secret does not open with this data key"
            ) from exc
        return plain.decode("utf-8")

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (e.g. ``presign``), stable for this data key."""
        return hmac.new(self._key, b"openkvs/" + purpose.encode("ascii"), hashlib.sha256).digest()


def is_sealed(stored: str) -> bool:
    return stored.startswith(_PREFIX)
