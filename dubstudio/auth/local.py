"""Desktop auth: one local user and an API token, created on first start.

The token lives in the OS keychain; without one (a headless Linux box) in a 0600 file in the data
folder. DUBSTUDIO_API_TOKEN overrides both.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ..config import Settings, keychain_get, keychain_set
from ..errors import AuthError
from .base import Caller

LOCAL_USER_ID = "local"
TOKEN_KEY = "api_token"
TOKEN_FILE = "api_token"


def token_location(settings: Settings) -> str:
    if settings.api_token is not None:
        return "the DUBSTUDIO_API_TOKEN environment variable"
    if keychain_get(TOKEN_KEY):
        return "the OS keychain (service 'dubstudio', entry 'api_token')"
    return str(settings.data_dir / TOKEN_FILE)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def api_token(settings: Settings) -> str:
    """The local API token, creating and storing one the first time."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    file = settings.data_dir / TOKEN_FILE
    if file.exists():
        return file.read_text().strip()
    token = keychain_get(TOKEN_KEY)
    if token:
        return token
    token = secrets.token_urlsafe(32)
    if not keychain_set(TOKEN_KEY, token) or keychain_get(TOKEN_KEY) != token:
        _write_private(file, token)
    return token


def check_bearer(settings: Settings, header: str | None, expected: str | None = None) -> str:
    """The user id for a valid `Authorization: Bearer <token>` header, else AuthError. `expected`: the
    token, when the caller already read it."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise AuthError("This route needs an API token.",
                        hint="Send 'Authorization: Bearer <token>'; `dubstudio token` prints it.")
    # Compared as bytes: compare_digest refuses non-ASCII str, and a strange token is just a wrong one.
    if not hmac.compare_digest(value.strip().encode(), (expected or api_token(settings)).encode()):
        raise AuthError("The API token is wrong.", hint="`dubstudio token` prints the right one.")
    return LOCAL_USER_ID


class LocalAuth:
    """The Authenticator of local mode: the local API token stands for the local user. The token is read
    once (keychain or file), so a request costs one comparison and never blocks."""

    may_block = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._token = api_token(settings)

    def authenticate(self, authorization_header: str | None) -> Caller:
        return Caller(user_id=check_bearer(self.settings, authorization_header, self._token))

    def close(self) -> None:
        pass
