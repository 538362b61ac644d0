"""What DUBSTUDIO_AUTH and DUBSTUDIO_STORAGE choose: the API's authenticator and the remote store.

Checked when a process starts (serve, worker, a job's child process), so that a Supabase mode missing
a setting stops it at once with the setting to fix, not at the first request or job. Messages name
settings, never their values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .auth.base import Authenticator
from .auth.local import LocalAuth
from .config import Settings
from .errors import ConfigError

if TYPE_CHECKING:
    from .storage.supabase import SupabaseStorage

URL_HINT = "Set it to the project's URL, e.g. https://abc.supabase.co (Supabase: Project Settings → API)."


def _web_address(value: str, name: str, needed_by: str) -> str:
    if not value:
        raise ConfigError(f"{needed_by} needs {name}.", hint=URL_HINT)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} is not a web address (http:// or https://).", hint=URL_HINT)
    return value.rstrip("/")


def check(settings: Settings) -> None:
    """Refuse a Supabase mode that lacks a setting (ConfigError with the fix); builds nothing."""
    if settings.auth == "supabase":
        _web_address(settings.supabase_url, "DUBSTUDIO_SUPABASE_URL", "DUBSTUDIO_AUTH=supabase")
        if settings.supabase_jwks_url:
            _web_address(settings.supabase_jwks_url, "DUBSTUDIO_SUPABASE_JWKS_URL", "DUBSTUDIO_AUTH=supabase")
        # No secret is fine: tokens are then checked with the project's public keys (JWKS), which the
        # URL locates.
    if settings.storage == "supabase":
        _web_address(settings.supabase_url, "DUBSTUDIO_SUPABASE_URL", "DUBSTUDIO_STORAGE=supabase")
        if not settings.secret("supabase_key"):
            raise ConfigError("DUBSTUDIO_STORAGE=supabase needs DUBSTUDIO_SUPABASE_KEY.",
                              hint="Set it to the project's service-role (or secret) key; it stays on the server.")


def authenticator(settings: Settings) -> Authenticator:
    """The local API token, or Supabase user JWTs verified locally."""
    check(settings)
    if settings.auth == "local":
        return LocalAuth(settings)
    from .auth.supabase import SupabaseAuth

    return SupabaseAuth(settings.supabase_url, settings.secret("supabase_jwt_secret"),
                        settings.supabase_jwks_url or None)


def remote_storage(settings: Settings) -> SupabaseStorage | None:
    """The Supabase bucket, staged in the data folder's `storage/` (None in local mode)."""
    check(settings)
    if settings.storage == "local":
        return None
    from .storage.supabase import SupabaseStorage

    key = settings.secret("supabase_key")
    assert key is not None  # check() refused a missing one
    return SupabaseStorage(settings.supabase_url, key, settings.supabase_bucket, settings.storage_dir)
