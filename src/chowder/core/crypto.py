"""Encryption of secrets at rest (model keys, gateway tokens) with Fernet from `cryptography`."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from chowder.core.errors import ChowderError
from chowder.core.settings import Settings


class SecretBox:
    """Encrypts and decrypts short secrets with the server key."""

    def __init__(self, key_material: str) -> None:
        digest = hashlib.sha256(key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ChowderError("A stored secret cannot be decrypted: was CHOWDER_SECRET_KEY changed?") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value())
        return cls(_load_or_create_key_file(settings.data_dir / "secret.key"))


def _load_or_create_key_file(path: Path) -> str:
    """The generated key is written once with mode 0600; O_EXCL makes concurrent first starts agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        handle.write(key)
    return key
