"""A fake Deepgram speaking the real REST protocol, for the official SDK to call over loopback.

* `POST /v1/listen` (pre-recorded STT): the answer has the documented shape (metadata; results.channels[0]
  with detected_language and alternatives[0].transcript/words incl. punctuated_word and speaker;
  results.utterances) and is derived deterministically from the audio (any container libsndfile reads:
  WAV, FLAC, Ogg...; unreadable audio gets Deepgram's 400): voiced stretches (by frame
  energy) become utterances, each filled with ~one word per 0.4 s from `script` (cycled), speakers
  alternating over `speakers`.
* `POST /v1/speak` (Aura TTS): a linear16 WAV (or raw PCM with container=none) of a voiced tone whose
  length is `ms_per_char` per character divided by `speed`, streamed in chunks. The pitch depends on
  the voice (model), so different voices give different audio.

Authentication as Deepgram does it: `Authorization: Token <key>`; a key not in `valid_keys` gets 401
with Deepgram's error body. Faults: `fail_next` is a queue of per-call faults: an HTTP status (400, 401,
402, 403, 429 with Retry-After, 500, 503...), "quota" (402), "slow" (answers after `slow_seconds`),
"malformed" (bad JSON from listen, a WAV cut short under its own header from speak), "drop" (the
connection closes without a complete answer: no body from listen, half the audio from speak).
`fail_rate` adds random transient faults (429, 500, drop) from a seeded RNG. Counters: `calls` per
endpoint, `max_in_flight` concurrent requests, and each request's details in `listen_requests` /
`speak_requests`.

A raw ASGI app (no framework) so a fault can stop mid-answer and the request body's arrival (chunked,
in how many pieces) is observable.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import struct
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import numpy as np

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SCRIPT = ["and", "so", "my", "fellow", "americans", "ask", "not", "what", "your", "country", "can", "do", "for",
          "you", "ask", "what", "you", "can", "do", "for", "your", "country"]
TRANSIENT = (429, 500, "drop")


class _Dropped(Exception):
    """Internal: the answer was deliberately left incomplete."""


@dataclass
class FakeDeepgram:
    valid_keys: set[str] = field(default_factory=lambda: {"dg-test-key"})
    script: list[str] = field(default_factory=lambda: list(SCRIPT))
    speakers: int = 2
    language: str = "en"  # what detect_language "hears"
    include_utterances: bool = True  # False: answer without results.utterances even when asked
    ms_per_char: float = 70.0
    latency: float = 0.0  # seconds every answer waits (lets concurrent calls overlap), its making included
    slow_seconds: float = 1.0
    retry_after: str = "1"
    fail_next: list[Any] = field(default_factory=list)
    fail_rate: float = 0.0
    seed: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    listen_requests: list[dict[str, Any]] = field(default_factory=list)
    speak_requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._generation = 0  # bumped by reset(): requests from before it no longer touch the records

    def reset(self, **changes: Any) -> None:
        """Clear faults, counters and records; then apply `changes` to the settings."""
        defaults = FakeDeepgram()
        for name in ("script", "speakers", "language", "include_utterances", "ms_per_char", "latency",
                     "slow_seconds", "retry_after", "fail_rate", "seed"):
            setattr(self, name, getattr(defaults, name))
        self.valid_keys = set(defaults.valid_keys)
        self.fail_next.clear()
        self.calls.clear()
        self.listen_requests.clear()
        self.speak_requests.clear()
        self.in_flight = self.max_in_flight = 0
        self._generation += 1
        for name, value in changes.items():
            setattr(self, name, value)
        self._rng = random.Random(self.seed)

    # ---------------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/")
        if method == "POST" and path == "/v1/listen":
            endpoint = "listen"
        elif method == "POST" and path == "/v1/speak":
            endpoint = "speak"
        elif method == "GET" and path == "/v1/projects":
            endpoint = "projects"
        else:
            await _json(send, 404, _err("NOT_FOUND", f"No route {method} {path}."))
            return
        self.calls[endpoint] += 1
        body, pieces = await _read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}

        auth = headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer") or key.strip() not in self.valid_keys:
            await _json(send, 401, _err("INVALID_AUTH", "Invalid credentials."))
            return

        generation = self._generation
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._next_fault()
            # The answer is made in a thread while the latency elapses: `latency` stands for the vendor's time
            # to answer, and the fake's own work (hours of audio heard, seconds spoken) should not add to it.
            heard = asyncio.ensure_future(asyncio.to_thread(self._analyse, body, query)) \
                if endpoint == "listen" else None
            spoken = asyncio.ensure_future(asyncio.to_thread(self._speech, body, query)) \
                if endpoint == "speak" else None
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
            if heard is not None:
                self.listen_requests.append({"query": query, "headers": headers, "bytes": len(body),
                                             "pieces": pieces, "magic": body[:4],
                                             "chunked": headers.get("transfer-encoding") == "chunked"})
                await self._listen(send, heard, fault)
            elif spoken is not None:
                self.speak_requests.append({"query": query, "body": body})
                await self._speak(send, spoken, fault)
            else:
                await _json(send, 200, {"projects": [{"project_id": "fake-project", "name": "Fake project"}]})
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
        """Answer a status fault; False for faults the endpoint handles itself (malformed, drop)."""
        if fault == "quota":
            fault = 402
        if not isinstance(fault, int):
            return False
        codes = {400: "Bad Request", 401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED", 403: "INSUFFICIENT_PERMISSIONS",
                 429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"}
        extra = [(b"retry-after", self.retry_after.encode())] if fault in (429, 503) else []
        await _json(send, fault, _err(codes.get(fault, "ERROR"), f"Injected fault {fault}."), extra)
        return True

    # ------------------------------------------------------------------------------------- listen

    async def _listen(self, send: Send, analysis: asyncio.Future[dict[str, Any] | ValueError], fault: Any) -> None:
        if fault == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
            raise _Dropped
        if fault == "malformed":
            await _raw(send, 200, b'{"metadata": {"request_id": ', b"application/json")
            return
        answer = await analysis
        if isinstance(answer, ValueError):
            await _json(send, 400, _err("Bad Request", f"Bad Request: failed to process audio: {answer}"))
            return
        await _json(send, 200, answer)

    def _analyse(self, audio: bytes, query: dict[str, str]) -> dict[str, Any] | ValueError:
        """The answer, or the reason the audio is refused (returned: an answer may never be awaited)."""
        try:
            return self.transcribe(audio, query)
        except ValueError as exc:
            return exc

    def transcribe(self, audio: bytes, query: dict[str, str]) -> dict[str, Any]:
        samples, sr = _decode_audio(audio)
        duration = len(samples) / sr
        flag = lambda name: query.get(name, "false").lower() == "true"  # noqa: E731
        punctuate = flag("punctuate") or flag("smart_format")
        diarize = flag("diarize")
        words: list[dict[str, Any]] = []
        utterances: list[dict[str, Any]] = []
        n = 0
        audio_id = zlib.crc32(audio) << 64  # once per request: the audio may be hours long
        for u_index, (start, end) in enumerate(_voiced(samples, sr)):
            count = max(1, round((end - start) / 0.4))
            step = (end - start) / count
            speaker = u_index % max(1, self.speakers)
            u_words = []
            for i in range(count):
                token = self.script[n % len(self.script)]
                n += 1
                pw = token.capitalize() if i == 0 else token
                if i == count - 1:
                    pw += "."
                w: dict[str, Any] = {"word": token, "start": round(start + i * step, 3),
                                     "end": round(start + i * step + step * 0.85, 3), "confidence": 0.98}
                if punctuate:
                    w["punctuated_word"] = pw
                if diarize:
                    w["speaker"] = speaker
                    w["speaker_confidence"] = 0.9
                u_words.append(w)
            words.extend(u_words)
            u: dict[str, Any] = {"start": u_words[0]["start"], "end": u_words[-1]["end"], "confidence": 0.98,
                                 "channel": 0, "transcript": " ".join(w.get("punctuated_word", w["word"])
                                                                      for w in u_words),
                                 "words": u_words, "id": str(uuid.UUID(int=audio_id | u_index))}
            if diarize:
                u["speaker"] = speaker
            utterances.append(u)
        model_id = str(uuid.UUID(int=0x1DEEB))
        channel: dict[str, Any] = {"alternatives": [{
            "transcript": " ".join(w.get("punctuated_word", w["word"]) for w in words),
            "confidence": 0.98 if words else 0.0, "words": words}]}
        if flag("detect_language"):
            channel["detected_language"] = self.language
            channel["language_confidence"] = 0.97
        results: dict[str, Any] = {"channels": [channel]}
        if flag("utterances") and self.include_utterances:
            results["utterances"] = utterances
        return {
            "metadata": {"transaction_key": "deprecated", "request_id": str(uuid.uuid4()),
                         "sha256": hashlib.sha256(audio).hexdigest(), "created": "2026-01-01T00:00:00.000Z",
                         "duration": round(duration, 3), "channels": 1, "models": [model_id],
                         "model_info": {model_id: {"name": f"general-{query.get('model', 'nova-3')}",
                                                   "version": "2025-01-01.0", "arch": query.get("model", "nova-3")}}},
            "results": results,
        }

    # -------------------------------------------------------------------------------------- speak

    def _speech(self, body: bytes, query: dict[str, str]) -> tuple[bytes, bytes] | str:
        """(audio, content type) for a /v1/speak request, or what is wrong with the request."""
        try:
            text = str(json.loads(body or b"{}").get("text") or "")
        except ValueError:
            text = ""
        model = query.get("model", "aura-asteria-en")
        encoding, container = query.get("encoding", "linear16"), query.get("container", "wav")
        rate = int(float(query.get("sample_rate", "24000")))
        speed = float(query.get("speed", "1.0"))
        problem = ("text is empty" if not text.strip() else
                   "unknown model" if not model.startswith("aura") else
                   "this fake speaks linear16 only" if encoding != "linear16" else
                   "speed must be within 0.7 and 1.5" if not 0.7 <= speed <= 1.5 else "")
        if problem:
            return problem
        pcm = self.speech_pcm(text, model, rate, speed)
        return (_wav(pcm, rate), b"audio/wav") if container == "wav" else (pcm, b"audio/l16")

    async def _speak(self, send: Send, speech: asyncio.Future[tuple[bytes, bytes] | str], fault: Any) -> None:
        made = await speech
        if isinstance(made, str):
            await _json(send, 400, _err("INVALID_QUERY", f"Invalid request: {made}."))
            return
        audio, content_type = made
        if fault == "malformed":  # a WAV cut short: its header still declares the full length
            audio = audio[:len(audio) // 2]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type), (b"dg-request-id", str(uuid.uuid4()).encode())]})
        step = 8192
        for i in range(0, len(audio), step):
            if fault == "drop" and i >= len(audio) // 2:
                raise _Dropped  # the connection closes mid-stream
            await send({"type": "http.response.body", "body": audio[i:i + step], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def speech_pcm(self, text: str, model: str, sample_rate: int, speed: float = 1.0) -> bytes:
        seconds = len(text) * self.ms_per_char / 1000.0 / speed
        f0 = 100.0 + (zlib.crc32(model.encode()) % 12) * 10.0  # each voice its own pitch
        return _tone(seconds, sample_rate, f0)


# ------------------------------------------------------------------------------------------ helpers


def _err(code: str, message: str) -> dict[str, Any]:
    return {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}


async def _read_body(receive: Receive) -> tuple[bytes, int]:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        if message.get("body"):
            parts.append(message["body"])
        if not message.get("more_body"):
            break
    return b"".join(parts), len(parts)


async def _raw(send: Send, status: int, body: bytes, content_type: bytes,
               extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, payload: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _raw(send, status, json.dumps(payload).encode(), b"application/json", extra)


def _decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        samples, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        raise ValueError("corrupt or unsupported data") from exc
    return samples.mean(axis=1), int(sr)


def _voiced(samples: np.ndarray, sr: int, frame_s: float = 0.02, min_gap_s: float = 0.3,
            min_len_s: float = 0.1) -> list[tuple[float, float]]:
    """Voiced stretches (start, end) in seconds: frames above an energy threshold, short gaps bridged."""
    frame = max(1, int(sr * frame_s))
    n = len(samples) // frame
    if n == 0:
        return []
    rms = np.sqrt((samples[:n * frame].reshape(n, frame) ** 2).mean(axis=1))
    threshold = max(1e-3, 0.15 * float(np.percentile(rms, 95)))
    voiced = rms > threshold
    spans: list[list[int]] = []
    for i, v in enumerate(voiced):
        if not v:
            continue
        if spans and (i - spans[-1][1]) * frame_s < min_gap_s:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    return [(round(a * frame_s, 3), round(b * frame_s, 3)) for a, b in spans if (b - a) * frame_s >= min_len_s]


def _tone(seconds: float, sample_rate: int, f0: float) -> bytes:
    """A voiced-sounding tone (fundamental plus two harmonics, 10 ms fades) as s16le PCM."""
    n = max(0, round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    y = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t) + 0.05 * np.sin(6 * np.pi * f0 * t)
    fade = min(n // 2, int(0.01 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        y[:fade] *= ramp
        y[n - fade:] *= ramp[::-1]
    return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()


def _wav(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * 2 * channels,
                                    2 * channels, 16)
    header += b"data" + struct.pack("<I", len(pcm))
    return header + pcm
