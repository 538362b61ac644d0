"""What the API needs of a sign-in scheme: turn an `Authorization` header into the caller, or refuse.

Two schemes implement it: the desktop's local API token and Supabase user JWTs (`auth.supabase`).
Every refusal is an `AuthError` (401) with a plain message; nothing else escapes `authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import AuthError

# Longer headers are refused before any parsing: no real bearer token comes close.
MAX_TOKEN_CHARS = 16_384


@dataclass(frozen=True)
class Caller:
    """Who is calling: `user_id` keys every record the caller owns; `email` is for display only."""

    user_id: str
    email: str | None = None


class Authenticator(Protocol):
    may_block: bool  # True: call `authenticate` off the event loop (it may fetch a key set)

    def authenticate(self, authorization_header: str | None) -> Caller:
        """The caller for a valid `Authorization: Bearer <token>` header; AuthError otherwise."""
        ...

    def close(self) -> None:
        """Release what it holds (an HTTP client)."""
        ...


def bearer_token(authorization_header: str | None, *, what: str = "a sign-in token") -> str:
    """The token of an `Authorization: Bearer <token>` header, or AuthError when there is none."""
    scheme, _, value = (authorization_header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise AuthError(f"This route needs {what}.", hint="Send 'Authorization: Bearer <token>'.")
    if len(value) > MAX_TOKEN_CHARS or not value.isascii() or any(c.isspace() for c in value):
        raise AuthError("The sign-in token is not valid.", hint="Sign in again.")
    return value
