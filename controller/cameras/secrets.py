"""Camera credentials encrypted at rest with a Fernet key kept 0600 in the controller's data directory."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from controller.messaging.keys import write_private

KEY_FILE = "camera-secrets.key"


class SecretBox:
    """Encrypts and decrypts camera passwords; the key never leaves this object."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SecretBox:
        """Loads the key, creating it on first start; refuses a key file others can read."""
        path = data_dir / KEY_FILE
        if not path.exists():
            key = Fernet.generate_key()
            write_private(path, key)
            return cls(key)
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} is readable by others; chmod 600 it")
        try:
            return cls(path.read_bytes().strip())
        except ValueError:
            raise ValueError(f"{path} does not hold a Fernet key") from None

    def encrypt(self, secret: str) -> str:
        """The secret as a Fernet token (text, safe for a database column)."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The secret back; a token from another key is an error naming no secret."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise ValueError("camera secret cannot be decrypted with this controller's key") from None
