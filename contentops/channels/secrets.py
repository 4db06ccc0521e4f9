"""Channel secrets encrypted at rest with a key derived from the app's secret key."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"contentops-channel-secrets",
               info=b"fernet").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(values: dict[str, Any], secret_key: str) -> str:
    return _fernet(secret_key).encrypt(json.dumps(values).encode()).decode()


def decrypt(token: str | None, secret_key: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet(secret_key).decrypt(token.encode()))
    except InvalidToken as exc:
        raise ValueError("channel secrets cannot be decrypted with this secret key") from exc
