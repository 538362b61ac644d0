"""ElevenLabs text-to-speech over its REST API, with `httpx` directly (no SDK: one endpoint is all we use).

`POST {base}/v1/text-to-speech/{voice_id}?output_format=pcm_24000` with the `xi-api-key` header and a
JSON body `{text, model_id, voice_settings?: {speed}}` answers raw 16-bit little-endian mono PCM at
24 kHz. `voice_settings.speed` is documented for 0.7-1.2, so `max_rate` is 1.2.

The multilingual models speak every language they support with any voice, so the default voices are
ElevenLabs' premade ones for all languages (alternating feminine and masculine), unless voices are
configured (`DUBSTUDIO_ELEVENLABS_VOICES`, see `parse_voice_setting`).

Errors become ours here: 401 (the key; or `quota_exceeded`, which ElevenLabs also answers with 401), 403,
400/422 and an unknown voice (404) are a `PermanentVendorError`; 429, 5xx, timeouts, dropped connections
and answers that are not audio are a `VendorError` (`retry_after` from the Retry-After header), retried
by `retry.call_with_retries`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import quote

import httpx
import numpy as np

from ..domain import Speech
from ..errors import ConfigError, PermanentVendorError, UnknownLanguage, VendorError
from .retry import call_with_retries, parse_retry_after, transport_error

VENDOR = "ElevenLabs"
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_multilingual_v2"
KEY_HINT = "Check ELEVENLABS_API_KEY (or the keychain entry elevenlabs_api_key)."
URL_HINT = "Check DUBSTUDIO_ELEVENLABS_BASE_URL and the network connection."
SAMPLE_RATE = 24000
OUTPUT_FORMAT = f"pcm_{SAMPLE_RATE}"
MIN_SPEED, MAX_SPEED = 0.7, 1.2  # documented range of voice_settings.speed

# Premade voices (usable by every account, in every language of the multilingual models),
# alternating feminine and masculine: Sarah, George, Laura, Charlie, Alice, Brian, Matilda, Daniel,
# Lily, Liam. The first is the default.
PREMADE_VOICES = [
    "EXAVITQu4vr4xnSDxMaL", "JBFqnCBsd6RMkjVDRZzb", "FGY2WhTYpPnrIDTdsKH5", "IKne3meq5aSn9XLyUdCD",
    "Xb7hH8MSUJpSbSDYk0k2", "nPczCjzI2devNBz1zQrb", "XrExE9yKIg1WjnnlVkGX", "onwK4e9ZLuTAKqWW03F9",
    "pFZP5JQG7iQjIQuC4Bku", "TX3LPaxmHKxFdv7VOQHJ",
]

_V2 = frozenset({"en", "ja", "zh", "de", "hi", "fr", "ko", "pt", "it", "es", "id", "nl", "tr", "fil", "pl", "sv",
                 "bg", "ro", "ar", "cs", "el", "fi", "hr", "ms", "sk", "da", "ta", "uk", "ru"})
# Languages each known model speaks (ISO 639-1, plus 'fil'); a model not listed here is not checked.
MODEL_LANGUAGES: dict[str, frozenset[str]] = {
    "eleven_multilingual_v2": _V2,
    "eleven_turbo_v2_5": _V2 | {"hu", "no", "vi"},
    "eleven_flash_v2_5": _V2 | {"hu", "no", "vi"},
}
# Models that take `language_code` (others refuse it).
LANGUAGE_CODE_MODELS = frozenset({"eleven_turbo_v2_5", "eleven_flash_v2_5"})


def parse_voice_setting(value: str | None) -> dict[str, list[str]] | None:
    """Voices from a setting: "id1,id2" (for every language) or "es=id1,id2;fr=id3" (per language,
    with "*" for the rest). None when empty."""
    if not value or not value.strip():
        return None
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        lang, sep, ids = part.partition("=")
        if not sep:
            lang, ids = "*", part
        voices = [v.strip() for v in ids.split(",") if v.strip()]
        if voices:
            out[lang.strip().lower() or "*"] = voices
    return out or None


def _short(language: str) -> str:
    return (language or "").strip().lower().replace("_", "-").split("-", 1)[0]


def _detail(response: httpx.Response) -> tuple[str, str]:
    """(status, message) from ElevenLabs' error body {"detail": {"status", "message"}} (or a string)."""
    try:
        body: Any = response.json()
    except ValueError:
        return "", response.text[:200]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return str(detail.get("status") or detail.get("code") or ""), str(detail.get("message") or detail)[:300]
    if isinstance(detail, list):  # 422 validation errors
        return "validation_error", "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d)
                                             for d in detail)[:300]
    return "", str(detail)[:300]


def status_error(response: httpx.Response, doing: str) -> VendorError:
    """Our error for a non-2xx answer."""
    code = response.status_code
    status, message = _detail(response)
    details = {"vendor": "elevenlabs", "status": code, "detail_status": status}
    if status == "quota_exceeded" or "quota" in status or code == 402:
        return PermanentVendorError(
            f"ElevenLabs refused the request: the account's character quota is used up ({code}).",
            hint="Add credit or raise the quota of the account of ELEVENLABS_API_KEY, or choose another "
            "voice engine (DUBSTUDIO_TTS).", details=details)
    if code in (401, 403):
        return PermanentVendorError(f"ElevenLabs refused the key ({code}{': ' + status if status else ''}).",
                                    hint=KEY_HINT, details=details)
    if code == 404:
        return PermanentVendorError(f"ElevenLabs does not know this voice or endpoint while {doing} (404): "
                                    f"{message}", hint="Check DUBSTUDIO_ELEVENLABS_VOICES and "
                                    "DUBSTUDIO_ELEVENLABS_BASE_URL.", details=details)
    if code in (400, 422):
        return PermanentVendorError(f"ElevenLabs refused the request while {doing} ({code}): {message}",
                                    hint="Check DUBSTUDIO_ELEVENLABS_MODEL and DUBSTUDIO_ELEVENLABS_VOICES.",
                                    details=details)
    return VendorError(f"ElevenLabs failed while {doing} ({code}{': ' + status if status else ''}).",
                       retry_after=parse_retry_after(response.headers), details=details)


class ElevenLabsTTS:
    """TextToSpeech with ElevenLabs. Thread-safe; at most `concurrency` calls are in flight at once."""

    max_rate = MAX_SPEED

    def __init__(self, api_key: str | None, base_url: str = DEFAULT_BASE_URL, *, model: str = DEFAULT_MODEL,
                 voices: dict[str, list[str]] | None = None, timeout: float = 60.0, retries: int = 3,
                 concurrency: int = 4, backoff: float = 0.5, max_backoff: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not api_key:
            raise ConfigError("ElevenLabs has no API key.",
                              hint="Set ELEVENLABS_API_KEY (or store it in the keychain as elevenlabs_api_key), "
                              "or choose another voice engine (DUBSTUDIO_TTS).")
        self.model = model or DEFAULT_MODEL
        self.name = f"elevenlabs:{self.model}"
        self.timeout = timeout
        self.attempts = retries + 1
        self._voices = {k.strip().lower(): list(v) for k, v in (voices or {}).items() if v}
        self._http = httpx.Client(base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), timeout=timeout,
                                  headers={"xi-api-key": api_key}, follow_redirects=True)
        self.concurrency = max(1, concurrency)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._backoff, self._max_backoff, self._sleep = backoff, max_backoff, sleep

    def voices(self, language: str) -> list[str]:
        lang = _short(language)
        known = MODEL_LANGUAGES.get(self.model)
        if known is not None and lang not in known:
            raise UnknownLanguage(
                f"ElevenLabs {self.model} cannot speak language {language!r}.",
                hint=f"It speaks {', '.join(sorted(known))}; choose another model (DUBSTUDIO_ELEVENLABS_MODEL) "
                "or voice engine (DUBSTUDIO_TTS).", details={"language": language, "engine": self.name})
        return list(self._voices.get(lang) or self._voices.get("*") or PREMADE_VOICES)

    def synthesize(self, text: str, language: str, voice: str | None = None, rate: float = 1.0) -> Speech:
        default = self.voices(language)[0]  # validates the language even when a voice is given
        voice_id = (voice or "").strip() or default
        text = text.strip()
        if not text:
            return Speech(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
        body: dict[str, Any] = {"text": text, "model_id": self.model}
        if rate and abs(rate - 1.0) > 1e-3:
            body["voice_settings"] = {"speed": round(min(MAX_SPEED, max(MIN_SPEED, rate)), 3)}
        if self.model in LANGUAGE_CODE_MODELS:
            body["language_code"] = _short(language)
        doing = "synthesizing speech"

        def once() -> Speech:
            with self._slots:
                try:
                    r = self._http.post(f"/v1/text-to-speech/{quote(voice_id, safe='')}",
                                        params={"output_format": OUTPUT_FORMAT}, json=body)
                except httpx.HTTPError as exc:
                    raise transport_error(VENDOR, exc, doing, self.timeout, URL_HINT) from exc
            if r.status_code >= 300:
                raise status_error(r, doing)
            content_type = r.headers.get("content-type", "")
            if "json" in content_type or content_type.startswith("text/") or len(r.content) % 2:
                raise VendorError(f"ElevenLabs sent something other than {OUTPUT_FORMAT} audio "
                                  f"({content_type or 'no content type'}, {len(r.content)} bytes).",
                                  hint="This is usually passing; it is retried.")
            pcm = np.frombuffer(r.content, dtype="<i2").astype(np.float32)
            return Speech((pcm / np.float32(32768.0)).astype(np.float32), SAMPLE_RATE)

        return call_with_retries(once, vendor=VENDOR, attempts=self.attempts, base_delay=self._backoff,
                                 max_delay=self._max_backoff, sleep=self._sleep)

    def _get(self, path: str, doing: str) -> Any:
        def once() -> Any:
            try:
                r = self._http.get(path)
            except httpx.HTTPError as exc:
                raise transport_error(VENDOR, exc, doing, self.timeout, URL_HINT) from exc
            if r.status_code >= 300:
                raise status_error(r, doing)
            try:
                return r.json()
            except ValueError as exc:
                raise VendorError(f"ElevenLabs sent an answer we could not read while {doing}.") from exc

        return call_with_retries(once, vendor=VENDOR, attempts=self.attempts, base_delay=self._backoff,
                                 max_delay=self._max_backoff, sleep=self._sleep)

    def check(self) -> dict[str, Any]:
        """The key works: the account's subscription (`tier`, `character_count`, `character_limit`)."""
        data = self._get("/v1/user", "checking the key")
        sub = data.get("subscription") if isinstance(data, dict) else None
        return dict(sub) if isinstance(sub, dict) else {}

    def account_voices(self) -> list[dict[str, Any]]:
        """The voices the account can use: [{voice_id, name, category, labels}]."""
        data = self._get("/v1/voices", "listing voices")
        voices = data.get("voices") if isinstance(data, dict) else None
        return [{k: v.get(k) for k in ("voice_id", "name", "category", "labels")}
                for v in voices or [] if isinstance(v, dict)]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
