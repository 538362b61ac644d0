"""Where each setting comes from, the engine keys in the keychain, and the running server's settings
brought up to date after the settings page saved (so the next job uses them without a restart).

Nothing here logs or returns a key: only whether one is set, where, and its last characters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from ..config import KEYRING_SERVICE, Settings, env_names, keychain_get, keychain_set
from ..doctor import KEYS, key_source
from ..services import Services

# Read once at start-up and never changed under a running server: where the records, the queue and the
# files are, and how callers are let in.
RESTART_FIELDS = ("data_dir", "database_url", "queue_url", "host", "port", "workers", "api_token", "auth", "storage",
                  "supabase_url", "supabase_key", "supabase_jwt_secret", "supabase_jwks_url", "supabase_bucket",
                  "cors_origins", "url_signing_secret")
VENDOR_TITLES = {"deepgram": "Deepgram", "openai": "OpenAI", "elevenlabs": "ElevenLabs"}


def _set(values: dict[str, str | None]) -> dict[str, str]:
    """Variables with a value, by lower-case name (pydantic-settings matches names case-insensitively
    and ignores empty values here)."""
    return {k.lower(): v for k, v in values.items() if v}


def origin(name: str) -> str | None:
    """Where a value that wins over the settings page comes from, e.g. "the environment (DUBSTUDIO_TTS)";
    None when the page decides."""
    env = _set(dict(os.environ))
    dotenv = _set(dotenv_values(".env")) if Path(".env").is_file() else {}
    for place, values in (("the environment", env), (".env", dotenv)):
        for var in env_names(name):
            if var.lower() in values:
                return f"{place} ({var})"
    return None


def mask(secret: str | None) -> str:
    """Enough of a key to tell which it is: its last four characters, and only for a long key."""
    if not secret:
        return "not set"
    return f"•••• {secret[-4:]}" if len(secret) >= 16 else "••••"


@dataclass
class KeyInfo:
    vendor: str
    title: str
    field: str
    variable: str
    shown: str  # masked
    source: str  # "environment (…)", ".env (…)", "keychain (…)" or "not set"

    @property
    def in_keychain(self) -> bool:
        return self.source.startswith("keychain")


def key_info(settings: Settings, vendor: str) -> KeyInfo:
    """What the page shows of a vendor's key (blocking: it may ask the keychain)."""
    field, variable = KEYS[vendor]
    return KeyInfo(vendor, VENDOR_TITLES[vendor], field, variable, mask(settings.secret(field)), key_source(vendor))


def store_key(field: str, value: str) -> bool:
    """Keep a key in the OS keychain; False when there is no keychain that keeps it (checked by reading
    it back: some back-ends accept and forget)."""
    return keychain_set(field, value) and keychain_get(field) == value


def forget_key(field: str) -> bool:
    """Remove a key from the OS keychain; False when that failed."""
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, field)
    except Exception:  # no keychain, or no such entry
        return keychain_get(field) is None
    return keychain_get(field) is None


def reload(svc: Services) -> Settings:
    """Read the settings again (environment, .env, saved file, keychain) and hand them to the running
    server, keeping what only a restart may change. Blocking: run it off the event loop.

    Requests in flight keep the object they already hold; jobs read the settings afresh in their own
    process, so the next one sees the change either way."""
    fresh = Settings()
    settings = fresh.model_copy(update={name: getattr(svc.settings, name) for name in RESTART_FIELDS})
    svc.settings = settings
    svc.queue.settings = settings
    return settings
