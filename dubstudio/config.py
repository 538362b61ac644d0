"""Settings: environment (DUBSTUDIO_*, plus the vendors' own key variables), a .env file, the settings
saved from the settings page (`settings.json` in the data folder), and the OS keychain for API keys, in
that order of precedence. Nothing is built at import time: call `Settings()`.

Every field's description is what the README's settings table shows; a test keeps the two in step.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

KEYRING_SERVICE = "dubstudio"
# Secrets that may live in the OS keychain, under KEYRING_SERVICE and the field name.
KEYCHAIN_FIELDS = ("deepgram_api_key", "openai_api_key", "elevenlabs_api_key")


def keychain_get(name: str) -> str | None:
    """Read one secret from the OS keychain; None where there is no keychain or no entry."""
    try:
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(KEYRING_SERVICE, name)
        except KeyringError:
            return None
    except Exception:  # a broken backend (no D-Bus, locked wallet) must not stop the app
        return None


def keychain_set(name: str, value: str) -> bool:
    """Store one secret in the OS keychain; False where there is no usable keychain."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, name, value)
        return True
    except Exception:
        return False


class KeychainSource(PydanticBaseSettingsSource):
    """Fills API keys from the OS keychain when neither the environment nor .env set them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in KEYCHAIN_FIELDS:
            return keychain_get(field_name), field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in KEYCHAIN_FIELDS:
            value = keychain_get(name)
            if value:
                out[name] = value
        return out


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("dubstudio", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DUBSTUDIO_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True, env_ignore_empty=True,  # `DUBSTUDIO_API_TOKEN=` must not mean an empty token
    )

    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Folder for the database, the queue, uploads and outputs.")
    database_url: str = Field("", description="SQLAlchemy async URL of the records database; empty: "
                              "SQLite `dubstudio.db` in the data folder. E.g. `postgresql+asyncpg://host/db`.")
    queue_url: str = Field("", description="Queue backend; empty: SQLite `queue.db` in the data folder; "
                           "`redis://host:6379/0` for Redis.")
    host: str = Field("127.0.0.1", description="Interface `dubstudio serve` binds.")
    port: int = Field(8080, description="Port `dubstudio serve` listens on.")
    workers: int = Field(1, ge=1, le=16, description="Queue consumer threads in a worker or in `serve`.")
    api_token: SecretStr | None = Field(None, description="Local API token; empty: one is created on first "
                                        "start and kept in the keychain or a 0600 file in the data folder.")
    stt: Literal["offline", "deepgram"] = Field(
        "offline", description="Speech-to-text engine: `offline` (pocketsphinx, English) or `deepgram` (nova-3: many "
        "languages, speakers; needs DEEPGRAM_API_KEY).")
    translator: Literal["openai", "manual"] = Field(
        "openai", description="Translation engine: `openai` (any OpenAI-compatible server) or `manual` (each "
        "language waits for its lines to be translated by hand, in the UI or the API).")
    tts: Literal["offline", "deepgram", "elevenlabs"] = Field(
        "offline", description="Text-to-speech engine: `offline` (espeak-ng), `deepgram` (Aura-2: en, es, de, fr, nl, "
        "it, ja; needs DEEPGRAM_API_KEY) or `elevenlabs` (premium voices, needs DUBSTUDIO_PREMIUM_VOICES=true and "
        "ELEVENLABS_API_KEY).")
    premium_voices: bool = Field(False, description="Feature flag: allow the ElevenLabs voices.")
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "DUBSTUDIO_OPENAI_API_KEY"),
        description="Key for the OpenAI-compatible translator (`OPENAI_API_KEY`; keychain entry `openai_api_key`).")
    openai_base_url: str = Field(
        "", validation_alias=AliasChoices("OPENAI_BASE_URL", "DUBSTUDIO_OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server (`OPENAI_BASE_URL`), e.g. "
        "`http://localhost:11434/v1` for Ollama; empty: OpenAI's.")
    openai_model: str = Field("gpt-4o-mini", description="Chat model used for translation.")
    glossary: dict[str, str] = Field(default_factory=dict, description="Terms and how to translate them, as "
                                     'JSON, e.g. `{"fellow Americans": "compatriotas"}`.')
    do_not_translate: list[str] = Field(default_factory=list, description="Terms left as they are (names, "
                                        'brands), as JSON, e.g. `["dubstudio", "Kennedy"]`.')
    deepgram_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DEEPGRAM_API_KEY", "DUBSTUDIO_DEEPGRAM_API_KEY"),
        description="Deepgram key (`DEEPGRAM_API_KEY`; keychain entry `deepgram_api_key`).")
    deepgram_base_url: str = Field("https://api.deepgram.com", description="Deepgram API base URL.")
    deepgram_stt_model: str = Field("nova-3", description="Deepgram speech-to-text model.")
    elevenlabs_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ELEVENLABS_API_KEY", "DUBSTUDIO_ELEVENLABS_API_KEY"),
        description="ElevenLabs key (`ELEVENLABS_API_KEY`; keychain entry `elevenlabs_api_key`).")
    elevenlabs_base_url: str = Field("https://api.elevenlabs.io", description="ElevenLabs API base URL.")
    elevenlabs_model: str = Field("eleven_multilingual_v2",
                                  description="ElevenLabs model, e.g. `eleven_flash_v2_5` (faster, cheaper).")
    elevenlabs_voices: str = Field("", description="ElevenLabs voice ids, the first the default: `id1,id2` for every "
                                   "language, or `es=id1,id2;fr=id3` per language (`*` for the rest); empty: "
                                   "ElevenLabs' premade voices.")
    vendor_concurrency: int = Field(4, ge=1, le=32,
                                    description="Calls in flight at once to one vendor (voices, translation batches).")
    vendor_timeout: float = Field(60.0, gt=0, description="Seconds before one vendor call is abandoned.")
    vendor_retries: int = Field(3, ge=0, le=10, description="Retries of one failed vendor call.")
    max_duration: float = Field(4 * 3600.0, gt=0, description="Longest input accepted, in seconds.")
    sample_rate: int = Field(48000, description="Sample rate of the working audio and the masters (Hz).")
    duck_db: float = Field(-14.0, le=0, description="Gain of the original under dubbed speech (dB).")
    duck_ramp_ms: float = Field(150.0, ge=0, description="Length of the ducking ramps (ms).")
    max_stretch: float = Field(1.25, ge=1.0, le=1.35,
                               description="Largest speed-up of a dubbed line; never over 1.35.")
    loudness_target: float = Field(-16.0, ge=-31, le=-5,
                                   description="Integrated loudness of the masters (LUFS); -23 for broadcast.")
    prices: dict[str, float] = Field(
        default_factory=dict, description="Prices in US dollars per unit by engine name prefix, as JSON, over the "
        'built-in table: e.g. `{"deepgram:nova": 0.0000717, "openai:gpt-4o": 0.0000025}` (per audio second for '
        "speech to text, per character for translation and voices).")
    voices: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Voices by language and speaker, as JSON, e.g. "
        '`{"es": {"S1": "es+m3", "S2": "es+f3"}}`; unset: the engine\'s voices in turn, one per speaker.')
    stale_after: float = Field(60.0, gt=0, description="Seconds without a heartbeat after which a running job "
                               "counts as lost (its worker died) and is queued again.")
    requeue_every: float = Field(30.0, gt=0, description="Seconds between checks for lost jobs in a consumer.")
    auth: Literal["local", "supabase"] = Field(
        "local", description="Who may call the API: `local` (the local API token) or `supabase` (Supabase user "
        "JWTs, verified locally; needs DUBSTUDIO_SUPABASE_URL and the JWT secret or the project's JWKS).")
    storage: Literal["local", "supabase"] = Field(
        "local", description="Where uploads and deliverables live: `local` (the data folder; signed URLs served by "
        "the app) or `supabase` (a Supabase Storage bucket; needs DUBSTUDIO_SUPABASE_URL and _KEY).")
    supabase_url: str = Field("", description="Supabase project URL, e.g. `https://abc.supabase.co`.")
    supabase_key: SecretStr | None = Field(None, description="Supabase service-role key, for storage (server side "
                                           "only; never give it to a browser).")
    supabase_jwt_secret: SecretStr | None = Field(None, description="The project's JWT secret, to verify HS256 user "
                                                  "tokens; empty: ES256/RS256 tokens through the project's JWKS.")
    supabase_jwks_url: str = Field("", description="JWKS URL; empty: `<supabase_url>/auth/v1/.well-known/jwks.json`.")
    supabase_bucket: str = Field("dubstudio", description="Storage bucket for uploads and deliverables.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API from a "
                                    'browser (the web frontend\'s), as JSON, e.g. `["https://app.example.com"]`; '
                                    "none by default.")
    max_upload_bytes: int = Field(8 * 1024**3, gt=0, description="Largest file accepted, in bytes.")
    upload_url_ttl: int = Field(3600, gt=0, le=7 * 86400, description="Seconds an upload URL stays valid.")
    download_url_ttl: int = Field(900, gt=0, le=86400, description="Seconds a (single-use) download URL stays valid.")
    url_signing_secret: SecretStr | None = Field(None, description="Secret of the app's signed URLs (32+ bytes); "
                                                 "empty: one is made on first start and kept in the data folder. "
                                                 "Every server of a scale-out set needs the same.")
    open_browser: bool = Field(True, description="Open the UI in the browser when `serve` starts (not headless).")
    retention_hours: float = Field(0.0, ge=0, description="Finished jobs older than this many hours are deleted "
                                   "with their files, when `serve` starts and every hour after; 0 keeps them "
                                   "forever. `dubstudio purge` does the same by hand.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, SavedSource(settings_cls), KeychainSource(settings_cls)

    # Derived locations: one place decides the layout of the data folder.
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'dubstudio.db'}"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None


# --- settings saved from the settings page -----------------------------------------------------------

log = logging.getLogger(__name__)
SAVED_FILE = "settings.json"
# What the settings page may save (never a secret: keys go to the keychain; never where the data
# folder, the database or the queue are: those must be known before this file can be found).
SAVED_FIELDS = ("stt", "translator", "tts", "premium_voices", "openai_base_url", "openai_model", "voices",
                "loudness_target", "retention_hours")


def env_names(name: str) -> list[str]:
    """The variables that set a field: its aliases, or DUBSTUDIO_<NAME>."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(a) for a in alias.choices]
    return [f"DUBSTUDIO_{name.upper()}"]


def check_saved(name: str, value: Any) -> Any:
    """`value` validated as the field `name` takes it (constraints included); ValidationError if not."""
    field = Settings.model_fields[name]
    kind: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    return TypeAdapter(kind).validate_python(value)


def read_saved(data_dir: Path) -> dict[str, Any]:
    """The saved settings that are still valid; a broken file or value is skipped (and logged), so a
    hand-edited file can never stop the app from starting."""
    path = data_dir / SAVED_FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("ignoring %s: it is not readable JSON", path)
        return {}
    out: dict[str, Any] = {}
    for name, value in (raw.items() if isinstance(raw, dict) else ()):
        if name not in SAVED_FIELDS:
            continue
        try:
            out[name] = check_saved(name, value)
        except ValidationError:
            log.warning("ignoring the saved setting %s in %s: not a valid value", name, path)
    return out


def write_saved(data_dir: Path, values: dict[str, Any]) -> Path:
    """Replace the saved settings with `values` (validated; None drops a setting), atomically."""
    out = {name: check_saved(name, value) for name, value in values.items() if value is not None}
    unknown = sorted(set(out) - set(SAVED_FIELDS))
    if unknown:
        raise ValueError(f"these settings cannot be saved here: {', '.join(unknown)}")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SAVED_FILE
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)
    return path


class SavedSource(PydanticBaseSettingsSource):
    """The settings page's `settings.json`, below the environment and .env: a field either of them sets
    is left to them, whichever of its variable names they use."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        above = self.current_state  # what init, the environment and .env gave
        data_dir = Path(above.get("data_dir") or default_data_dir())
        taken = {key.lower() for key in above}
        return {name: value for name, value in read_saved(data_dir).items()
                if not ({name, *(n.lower() for n in env_names(name))} & taken)}
