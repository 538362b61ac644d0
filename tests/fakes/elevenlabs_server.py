"""A fake ElevenLabs speaking the real REST protocol over loopback, for our httpx client.

* `POST /v1/text-to-speech/{voice_id}?output_format=pcm_24000`: raw s16le mono PCM (pcm_16000, pcm_22050,
  pcm_24000 and pcm_44100 are understood) of a voiced tone lasting `ms_per_char` per character divided
  by `voice_settings.speed` (documented range 0.7-1.2), pitched by voice; streamed in chunks. An unknown
  voice gets 404 `voice_not_found`; the characters are counted against the subscription.
* `GET /v1/user`: the user with its `subscription` (tier, character_count, character_limit...).
* `GET /v1/voices`: `{"voices": [{voice_id, name, category, labels, ...}], "has_more": false, ...}`.

Authentication as ElevenLabs does it: the `xi-api-key` header; a key not in `valid_keys` gets 401
`{"detail": {"status": "invalid_api_key", ...}}`. Faults: `fail_next` queues per-call faults: an HTTP
status (400, 401, 403, 429 with Retry-After, 500, 503...), "quota" (401 `quota_exceeded`, as ElevenLabs
answers), "slow" (answers after `slow_seconds`), "malformed" (a 200 with a broken JSON body instead of
audio), "drop" (the connection closes after half the audio). `fail_rate` adds random transient faults
(429, 500, drop) from a seeded RNG. Counters: `calls` per endpoint ("tts", "user", "voices"),
`max_in_flight`, and each synthesis request in `tts_requests`.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import numpy as np

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

TRANSIENT = (429, 500, "drop")
PCM_RATES = {"pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000, "pcm_44100": 44100}

# (voice_id, name, gender) of ElevenLabs' premade voices the fake knows.
PREMADE = [
    ("EXAVITQu4vr4xnSDxMaL", "Sarah", "female"), ("JBFqnCBsd6RMkjVDRZzb", "George", "male"),
    ("FGY2WhTYpPnrIDTdsKH5", "Laura", "female"), ("IKne3meq5aSn9XLyUdCD", "Charlie", "male"),
    ("Xb7hH8MSUJpSbSDYk0k2", "Alice", "female"), ("nPczCjzI2devNBz1zQrb", "Brian", "male"),
    ("XrExE9yKIg1WjnnlVkGX", "Matilda", "female"), ("onwK4e9ZLuTAKqWW03F9", "Daniel", "male"),
    ("pFZP5JQG7iQjIQuC4Bku", "Lily", "female"), ("TX3LPaxmHKxFdv7VOQHJ", "Liam", "male"),
]


class _Dropped(Exception):
    """Internal: the answer was deliberately left incomplete."""


@dataclass
class FakeElevenLabs:
    valid_keys: set[str] = field(default_factory=lambda: {"el-test-key"})
    voices: dict[str, str] = field(default_factory=lambda: {v: n for v, n, _ in PREMADE})
    ms_per_char: float = 70.0
    latency: float = 0.0
    slow_seconds: float = 1.0
    retry_after: str = "1"
    character_limit: int = 100_000
    character_count: int = 0
    fail_next: list[Any] = field(default_factory=list)
    fail_rate: float = 0.0
    seed: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    tts_requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._generation = 0  # bumped by reset(): requests from before it no longer touch the records

    def reset(self, **changes: Any) -> None:
        """Clear faults, counters and records; then apply `changes` to the settings."""
        defaults = FakeElevenLabs()
        for name in ("valid_keys", "voices", "ms_per_char", "latency", "slow_seconds", "retry_after",
                     "character_limit", "character_count", "fail_rate", "seed"):
            setattr(self, name, getattr(defaults, name))
        self.fail_next.clear()
        self.calls.clear()
        self.tts_requests.clear()
        self.in_flight = self.max_in_flight = 0
        self._generation += 1
        for name, value in changes.items():
            setattr(self, name, value)
        self._rng = random.Random(self.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/")
        if method == "POST" and path.startswith("/v1/text-to-speech/") and path.count("/") == 3:
            endpoint = "tts"
        elif method == "GET" and path == "/v1/user":
            endpoint = "user"
        elif method == "GET" and path == "/v1/voices":
            endpoint = "voices"
        else:
            await _json(send, 404, {"detail": "Not Found"})
            return
        self.calls[endpoint] += 1
        body = await _read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if headers.get("xi-api-key", "") not in self.valid_keys:
            await _json(send, 401, _detail("invalid_api_key", "Invalid API key"))
            return

        generation = self._generation
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._next_fault()
            if fault == "slow":
                await asyncio.sleep(self.slow_seconds)
                fault = None
            elif self.latency:
                await asyncio.sleep(self.latency)
            if generation != self._generation:  # a slow answer outlived its test: its client is gone
                await _json(send, 503, {"detail": "stale request"})
                return
            if fault is not None and await self._status_fault(send, fault):
                return
            if endpoint == "user":
                await _json(send, 200, self.user())
            elif endpoint == "voices":
                await _json(send, 200, self.voice_list())
            else:
                await self._tts(send, unquote(path.rsplit("/", 1)[1]), body, query, fault)
        except _Dropped:
            return  # leave the answer incomplete: the server closes the connection
        finally:
            if generation == self._generation:
                self.in_flight -= 1

    def _next_fault(self) -> Any:
        if self.fail_next:
            return self.fail_next.pop(0)
        if self.fail_rate and self._rng.random() < self.fail_rate:
            return self._rng.choice(TRANSIENT)
        return None

    async def _status_fault(self, send: Send, fault: Any) -> bool:
        if fault == "quota":
            await _json(send, 401, _detail("quota_exceeded", "This request exceeds your quota. You have "
                                           "0 credits remaining, while 100 credits are required."))
            return True
        if not isinstance(fault, int):
            return False
        statuses = {400: "invalid_request", 401: "invalid_api_key", 403: "missing_permissions",
                    429: "too_many_concurrent_requests", 500: "internal_error", 503: "system_busy"}
        extra = [(b"retry-after", self.retry_after.encode())] if fault in (429, 503) else []
        await _json(send, fault, _detail(statuses.get(fault, "error"), f"Injected fault {fault}."), extra)
        return True

    async def _tts(self, send: Send, voice_id: str, body: bytes, query: dict[str, str], fault: Any) -> None:
        if fault == "malformed":
            await _raw(send, 200, b'{"detail": {"status": ', b"application/json")
            return
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = None
        if not isinstance(req, dict):
            await _json(send, 422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON", "type": "value_error"}]})
            return
        self.tts_requests.append({"voice_id": voice_id, "query": query, "body": req})
        if voice_id not in self.voices:
            await _json(send, 404, _detail("voice_not_found", f"A voice with the voice_id {voice_id} was not "
                                           "found."))
            return
        text = str(req.get("text") or "")
        speed = float((req.get("voice_settings") or {}).get("speed") or 1.0)
        fmt = query.get("output_format", "mp3_44100_128")
        problem = ("text is empty" if not text.strip() else
                   f"this fake produces pcm only, not {fmt}" if fmt not in PCM_RATES else
                   "speed must be within 0.7 and 1.2" if not 0.7 <= speed <= 1.2 else "")
        if problem:
            await _json(send, 400, _detail("invalid_request", problem))
            return
        if self.character_count + len(text) > self.character_limit:
            await _json(send, 401, _detail("quota_exceeded", "This request exceeds your quota."))
            return
        self.character_count += len(text)
        pcm = self.speech_pcm(text, voice_id, PCM_RATES[fmt], speed)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"audio/pcm"), (b"request-id", b"fake")]})
        step = 8192
        for i in range(0, len(pcm), step):
            if fault == "drop" and i >= len(pcm) // 2:
                raise _Dropped
            await send({"type": "http.response.body", "body": pcm[i:i + step], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def speech_pcm(self, text: str, voice_id: str, sample_rate: int, speed: float = 1.0) -> bytes:
        seconds = len(text) * self.ms_per_char / 1000.0 / speed
        f0 = 100.0 + (zlib.crc32(voice_id.encode()) % 12) * 10.0
        n = round(seconds * sample_rate)
        t = np.arange(n, dtype=np.float64) / sample_rate
        y = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t)
        return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()

    def user(self) -> dict[str, Any]:
        return {"subscription": {"tier": "creator", "character_count": self.character_count,
                                 "character_limit": self.character_limit, "can_extend_character_limit": True,
                                 "allowed_to_extend_character_limit": True,
                                 "next_character_count_reset_unix": 1893456000, "voice_limit": 30,
                                 "status": "active", "currency": "usd"},
                "is_new_user": False, "xi_api_key": "el-***", "can_use_delayed_payment_methods": False,
                "is_onboarding_completed": True, "first_name": "Test"}

    def voice_list(self) -> dict[str, Any]:
        genders = {v: g for v, _, g in PREMADE}
        voices: list[dict[str, Any]] = [
            {"voice_id": v, "name": n, "category": "premade" if v in genders else "cloned",
             "labels": {"accent": "american", "gender": genders.get(v, "neutral"), "age": "middle_aged"},
             "description": None, "preview_url": f"https://example.invalid/{v}.mp3",
             "available_for_tiers": [], "settings": None}
            for v, n in self.voices.items()]
        return {"voices": voices, "has_more": False, "total_count": len(voices), "next_page_token": None}


def _detail(status: str, message: str) -> dict[str, Any]:
    return {"detail": {"status": status, "message": message}}


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


async def _raw(send: Send, status: int, body: bytes, content_type: bytes,
               extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, payload: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _raw(send, status, json.dumps(payload).encode(), b"application/json", extra)
