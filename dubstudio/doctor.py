"""`dubstudio doctor`: which engines are configured, where each key is kept, and whether each key works
(one cheap call each: list projects, models or the account; the offline engines speak and load)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import Settings, keychain_get
from .errors import DubError
from .vendors import registry

KEYS = {"deepgram": ("deepgram_api_key", "DEEPGRAM_API_KEY"), "openai": ("openai_api_key", "OPENAI_API_KEY"),
        "elevenlabs": ("elevenlabs_api_key", "ELEVENLABS_API_KEY")}


@dataclass
class Check:
    role: str  # "speech to text", "translation", "voices"
    engine: str
    key: str  # where the key comes from
    ok: bool
    detail: str


def key_source(vendor: str) -> str:
    field, env = KEYS[vendor]
    if os.environ.get(env) or os.environ.get(f"DUBSTUDIO_{env}"):
        return f"environment ({env})"
    dotenv = Path(".env")
    if dotenv.exists() and any(line.split("=", 1)[0].strip() in (env, f"DUBSTUDIO_{env}")
                               for line in dotenv.read_text().splitlines() if "=" in line):
        return f".env ({dotenv.resolve()})"
    if keychain_get(field):
        return f"keychain (dubstudio/{field})"
    return "not set"


def _deepgram(settings: Settings) -> str:
    from deepgram.core.api_error import ApiError

    from .vendors.deepgram import _make_client, vendor_error

    client, http = _make_client(settings.secret("deepgram_api_key"), settings.deepgram_base_url,
                                min(settings.vendor_timeout, 15.0))
    try:
        projects = client.manage.v1.projects.list().projects or []
    except (ApiError, Exception) as exc:
        import httpx

        if isinstance(exc, ApiError | httpx.HTTPError):
            raise vendor_error(exc, doing="checking the key", timeout=settings.vendor_timeout) from exc
        raise
    finally:
        http.close()
    return f"key works ({len(projects)} project(s))"


def _openai(settings: Settings) -> str:
    import openai

    from .vendors.openai_translate import OpenAITranslator

    t = OpenAITranslator(settings.secret("openai_api_key"), settings.openai_base_url or None, settings.openai_model,
                         min(settings.vendor_timeout, 15.0), 0)
    try:
        models = [m.id for m in t.client.models.list()]
    except openai.AuthenticationError as exc:
        raise DubError(f"The translator refused the key ({exc.status_code}).", hint="Check OPENAI_API_KEY.") from exc
    except openai.APIError as exc:
        raise DubError(f"The translator could not be reached: {exc.message}", hint="Check OPENAI_BASE_URL.") from exc
    note = "" if settings.openai_model in models or not models else f"; model {settings.openai_model!r} not listed"
    return f"key works ({len(models)} model(s){note})"


def _elevenlabs(settings: Settings) -> str:
    tts = registry.tts(settings)
    sub = tts.check()  # type: ignore[attr-defined]
    return f"key works ({sub.get('tier', 'unknown')} tier)"


def _espeak(settings: Settings) -> str:
    from .vendors.offline.espeak import EspeakTTS

    with EspeakTTS() as tts:
        speech = tts.synthesize("ready", "en")
    return f"speaks ({speech.samples.size / speech.sample_rate:.1f} s for a word)"


def _pocketsphinx(settings: Settings) -> str:
    from pocketsphinx import Decoder

    Decoder(samprate=16000, loglevel="ERROR")
    return "English model loads"


def _manual(settings: Settings) -> str:
    return "lines are typed by hand: nothing to check"


def run(settings: Settings) -> list[Check]:
    plan = [("speech to text", settings.stt, _deepgram if settings.stt == "deepgram" else _pocketsphinx),
            ("translation", settings.translator, _openai if settings.translator == "openai" else _manual),
            ("voices", settings.tts, {"deepgram": _deepgram, "elevenlabs": _elevenlabs}.get(settings.tts, _espeak))]
    checks = []
    for role, engine, probe in plan:
        key = key_source(engine) if engine in KEYS else "none needed"
        try:
            checks.append(Check(role, engine, key, True, probe(settings)))
        except DubError as err:
            checks.append(Check(role, engine, key, False, str(err)))
    return checks
