"""Deepgram: speech-to-text with nova-3 (pre-recorded REST) and text-to-speech with Aura-2, through the
official `deepgram-sdk` (7.x, Fern-generated).

How it is wired:

* Our own `httpx.Client(timeout=...)` goes to the SDK: the SDK applies no default timeout when you pass a
  client, so the timeout is set on it (and per request).
* The SDK's own retries are off (`max_retries=0`). They cover status codes only, not a timeout, a dropped
  connection or a failure in the middle of a streamed `/v1/speak` answer, and a retried streamed upload
  would resend an exhausted generator. Every retry happens in `retry.call_with_retries`, which reopens
  the file (or re-requests the whole line) each time.
* Speech to text uploads the 16 kHz WAV as lossless FLAC (`flac_upload`): half the bytes to send, the
  same samples heard; streamed from disk, so a long file is never held in memory.
* A custom base URL (a proxy, a self-hosted Deepgram, our loopback fake) is given with
  `DeepgramClientEnvironment(base=..., production=<ws variant>, ...)`.

Errors become ours here: 401/403 (the key), 400 (the request), 402 and quota answers (the account) are a
`PermanentVendorError`; 429, 5xx, timeouts, dropped connections and unreadable answers are a
`VendorError` (with `retry_after` from the answer's headers where given).
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
import soundfile as sf
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.core.parse_error import ParsingError
from deepgram.environment import DeepgramClientEnvironment

from ..domain import Segment, Speech, Transcript, Word
from ..errors import BadInput, ConfigError, PermanentVendorError, UnknownLanguage, VendorError
from .base import Progress
from .retry import call_with_retries, parse_retry_after, transport_error

VENDOR = "Deepgram"
DEFAULT_BASE_URL = "https://api.deepgram.com"
KEY_HINT = "Check DEEPGRAM_API_KEY (or the keychain entry deepgram_api_key)."
URL_HINT = "Check DUBSTUDIO_DEEPGRAM_BASE_URL and the network connection."

UPLOAD_CHUNK = 256 * 1024  # bytes read from disk per piece of the streamed upload
ENCODE_BLOCK = 1 << 16  # frames per block when re-encoding the upload to FLAC
PAUSE_S = 0.4  # without utterances: a silence this long between words ends a line
MAX_SEGMENT_S = 10.0  # longer lines are split at their best pause (a sentence end first)

TTS_SAMPLE_RATE = 24000
TTS_MAX_CHARS = 2000  # /v1/speak refuses longer input (413)
AURA_MIN_SPEED, AURA_MAX_SPEED = 0.7, 1.5  # documented range of /v1/speak `speed`
# Aura-2's `speed` is documented for English and Spanish voices; other languages get rate 1.0.
SPEED_LANGUAGES = frozenset({"en", "es"})

# Aura-2 voices per language, alternating feminine and masculine voices (Deepgram's "expressed
# gender") where the language has both, so distinct speakers get distinct-sounding voices. The first
# is the language's default.
AURA2_VOICES: dict[str, list[str]] = {
    "en": ["aura-2-thalia-en", "aura-2-arcas-en", "aura-2-hera-en", "aura-2-orpheus-en", "aura-2-cordelia-en",
           "aura-2-atlas-en", "aura-2-athena-en", "aura-2-zeus-en", "aura-2-luna-en", "aura-2-apollo-en"],
    "es": ["aura-2-celeste-es", "aura-2-nestor-es", "aura-2-estrella-es", "aura-2-javier-es", "aura-2-diana-es",
           "aura-2-aquila-es", "aura-2-selena-es", "aura-2-sirio-es", "aura-2-olivia-es", "aura-2-luciano-es"],
    "de": ["aura-2-viktoria-de", "aura-2-julius-de", "aura-2-elara-de", "aura-2-fabian-de", "aura-2-kara-de",
           "aura-2-lara-de", "aura-2-aurelia-de"],
    "fr": ["aura-2-agathe-fr", "aura-2-hector-fr"],
    "nl": ["aura-2-rhea-nl", "aura-2-sander-nl", "aura-2-daphne-nl", "aura-2-lars-nl", "aura-2-beatrix-nl",
           "aura-2-roman-nl", "aura-2-cornelia-nl", "aura-2-hestia-nl", "aura-2-leda-nl"],
    "it": ["aura-2-livia-it", "aura-2-dionisio-it", "aura-2-demetra-it", "aura-2-cesare-it", "aura-2-melia-it",
           "aura-2-flavio-it", "aura-2-cinzia-it", "aura-2-elio-it", "aura-2-maia-it"],
    "ja": ["aura-2-izanami-ja", "aura-2-fujin-ja", "aura-2-ama-ja", "aura-2-ebisu-ja", "aura-2-uzume-ja"],
}


# --------------------------------------------------------------------------------------------------
# Client, environment, errors


def environment(base_url: str) -> DeepgramClientEnvironment:
    """REST calls go to `base`; websocket ones to its ws:// / wss:// twin."""
    base = (base_url or DEFAULT_BASE_URL).strip().rstrip("/")
    if base == DEFAULT_BASE_URL:
        return DeepgramClientEnvironment.PRODUCTION
    ws = re.sub(r"^http", "ws", base, flags=re.IGNORECASE)  # https -> wss, http -> ws
    return DeepgramClientEnvironment(base=base, production=ws, agent=ws, agent_rest=base)


def _make_client(api_key: str | None, base_url: str, timeout: float) -> tuple[DeepgramClient, httpx.Client]:
    if not api_key:
        raise ConfigError("Deepgram has no API key.",
                          hint="Set DEEPGRAM_API_KEY (or store it in the keychain as deepgram_api_key), "
                          "or choose the offline engine (DUBSTUDIO_STT=offline, DUBSTUDIO_TTS=offline).")
    http = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True)
    client = DeepgramClient(api_key=api_key, environment=environment(base_url), httpx_client=http,
                            timeout=timeout, max_retries=0)
    return client, http


def _body_message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("err_msg", "message", "reason", "error", "detail"):
            if body.get(key):
                return str(body[key])
        return str(body)[:200]
    return str(body or "")[:200]


def _body_code(body: Any) -> str:
    return str(body.get("err_code", "")) if isinstance(body, dict) else ""


def vendor_error(exc: ApiError | ParsingError | httpx.HTTPError, *, doing: str, timeout: float) -> VendorError:
    """Our error for an SDK or transport failure while `doing` something ("transcribing", ...)."""
    if isinstance(exc, ParsingError):
        return VendorError(f"Deepgram sent an answer we could not read while {doing}.",
                           hint="This is usually passing; it is retried.")
    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        message, code = _body_message(exc.body), _body_code(exc.body).upper()
        details = {"vendor": "deepgram", "status": status, "err_code": code} if code else \
            {"vendor": "deepgram", "status": status}
        if status in (401, 403):
            return PermanentVendorError(f"Deepgram refused the key ({status}).", hint=KEY_HINT, details=details)
        if status == 402 or any(w in code for w in ("PAYMENT", "QUOTA", "CREDIT", "INSUFFICIENT")):
            return PermanentVendorError(
                f"Deepgram refused the request: the project is out of credit or over its quota ({status}).",
                hint="Add credit to the Deepgram project of DEEPGRAM_API_KEY, or choose another engine "
                "(DUBSTUDIO_STT / DUBSTUDIO_TTS).", details=details)
        if status == 400:
            return PermanentVendorError(f"Deepgram refused the request while {doing} (400): {message}",
                                        hint="Check the language, DUBSTUDIO_DEEPGRAM_STT_MODEL and the voice; "
                                        "the source must be audio.",
                                        details=details)
        if status in (404, 405):
            return PermanentVendorError(f"Deepgram has no such endpoint ({status}).", hint=URL_HINT,
                                        details=details)
        if status == 413:
            return PermanentVendorError(f"Deepgram refused the request as too large while {doing} (413).",
                                        hint="Shorten the input.", details=details)
        if 200 <= status < 300:
            return VendorError(f"Deepgram sent an answer we could not read while {doing}.",
                               hint="This is usually passing; it is retried.", details=details)
        return VendorError(f"Deepgram failed while {doing} ({status}): {message}",
                           retry_after=parse_retry_after(exc.headers), details=details)
    return transport_error(VENDOR, exc, doing, timeout, URL_HINT)


# --------------------------------------------------------------------------------------------------
# Speech to text


class _Monotonic:
    """Calls progress with fractions that never go down (retries restart the upload)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._last = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if self._progress is None or fraction <= self._last:
            return
        if fraction < 1.0 and fraction - self._last < 0.005:
            return  # too small a step to show
        self._last = fraction
        self._progress(fraction)


@contextmanager
def flac_upload(wav_path: Path) -> Iterator[Path]:
    """A lossless FLAC copy of the WAV to upload: about half its size, so half the upload time and
    bandwidth (libsndfile encodes a 2-hour 16 kHz track in about a second). It lives in the temporary
    directory until the block ends. Should encoding fail (not a file libsndfile reads, no room for the
    copy), the WAV itself is uploaded: Deepgram then judges it."""
    fd, name = tempfile.mkstemp(prefix="dubstudio-stt-", suffix=".flac")
    os.close(fd)
    flac = Path(name)
    try:
        upload = flac
        try:
            with sf.SoundFile(str(wav_path)) as src, \
                    sf.SoundFile(name, "w", samplerate=src.samplerate, channels=src.channels, format="FLAC",
                                 subtype="PCM_16") as dst:
                for block in src.blocks(blocksize=ENCODE_BLOCK, dtype="int16"):
                    dst.write(block)
        except (RuntimeError, ValueError, OSError):  # libsndfile's errors are RuntimeErrors
            upload = wav_path
        yield upload
    finally:
        flac.unlink(missing_ok=True)


def file_chunks(path: Path, chunk_size: int = UPLOAD_CHUNK,
                progress: Callable[[float], None] | None = None) -> Iterator[bytes]:
    """The file's bytes, one piece at a time (the upload never holds the whole file)."""
    total = max(1, path.stat().st_size)
    sent = 0
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(0.9 * sent / total)


class DeepgramSTT:
    """SpeechToText with Deepgram's pre-recorded API: words, punctuation, utterances and speakers."""

    def __init__(self, api_key: str | None, base_url: str = DEFAULT_BASE_URL, *, model: str = "nova-3",
                 timeout: float = 300.0, retries: int = 3, backoff: float = 0.5, max_backoff: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self._http = _make_client(api_key, base_url, timeout)
        self.model = model
        self.name = f"deepgram:{model}"
        self.timeout = timeout
        self.attempts = retries + 1
        self._backoff, self._max_backoff, self._sleep = backoff, max_backoff, sleep

    def transcribe(self, wav_path: Path, language: str, progress: Progress | None = None) -> Transcript:
        wav_path = Path(wav_path)
        if not wav_path.is_file():
            raise BadInput(f"No audio file at {wav_path}.", hint="Pass the path of a WAV file.")
        language = (language or "auto").strip().lower()
        report = _Monotonic(progress)
        options: dict[str, Any] = {"model": self.model, "smart_format": True, "punctuate": True,
                                   "utterances": True, "diarize": True}
        if language == "auto":
            options["detect_language"] = True
        else:
            options["language"] = language

        def once(upload: Path) -> dict[str, Any]:
            try:
                resp = self.client.listen.v1.media.transcribe_file(
                    request=file_chunks(upload, progress=report), **options)
            except (ApiError, ParsingError, httpx.HTTPError) as exc:
                raise vendor_error(exc, doing="transcribing", timeout=self.timeout) from exc
            data = resp.model_dump() if hasattr(resp, "model_dump") else resp
            if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
                raise VendorError("Deepgram sent an answer without results while transcribing.",
                                  hint="This is usually passing; it is retried.")
            return data

        with flac_upload(wav_path) as upload:  # encoded once, re-read by every attempt
            data = call_with_retries(lambda: once(upload), vendor=VENDOR, attempts=self.attempts,
                                     base_delay=self._backoff, max_delay=self._max_backoff, sleep=self._sleep)
        transcript = to_transcript(data, language, fallback_duration=lambda: _wav_duration(wav_path))
        report(1.0)
        return transcript

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wav_duration(path: Path) -> float:
    try:
        return float(sf.info(str(path)).duration)
    except Exception:
        return 0.0


def _short_language(code: Any) -> str:
    return str(code or "").strip().lower().replace("_", "-").split("-", 1)[0]


def to_transcript(data: dict[str, Any], language: str,
                  fallback_duration: Callable[[], float] = lambda: 0.0) -> Transcript:
    """Map Deepgram's pre-recorded answer to our Transcript: utterances (or, without them, the channel's
    words grouped at pauses and speaker changes) become segments seg-0001..., with speakers S1, S2..."""
    results = data.get("results") or {}
    channels = results.get("channels") or [{}]
    channel = channels[0] or {}
    alternatives = channel.get("alternatives") or [{}]
    words = alternatives[0].get("words") or []
    detected = _short_language(channel.get("detected_language"))
    # The language heard when asked to detect it ("en" if Deepgram named none), else the one given.
    lang = (detected or "en") if language == "auto" else _short_language(language)

    # (speaker, words) per line: Deepgram's utterances, else its words grouped at pauses and speaker turns
    groups: list[tuple[Any, list[dict[str, Any]]]] = []
    utterances = results.get("utterances")
    if utterances:
        for u in sorted(utterances, key=lambda u: (u.get("start") or 0.0)):
            uw = u.get("words") or []
            speaker = u.get("speaker")
            if speaker is None and uw:
                speaker = uw[0].get("speaker")
            groups.append((speaker, uw))
    else:
        current: list[dict[str, Any]] = []
        for w in words:
            if current and ((w.get("start") or 0.0) - (current[-1].get("end") or 0.0) >= PAUSE_S
                            or w.get("speaker") != current[-1].get("speaker")):
                groups.append((current[0].get("speaker"), current))
                current = []
            current.append(w)
        if current:
            groups.append((current[0].get("speaker"), current))

    segments: list[Segment] = []
    for speaker, group_words in groups:
        mapped = [Word(text=str(w.get("punctuated_word") or w.get("word") or "").strip(),
                       start=float(w.get("start") or 0.0), end=float(w.get("end") or 0.0)) for w in group_words]
        mapped = [w for w in mapped if w.text]
        label = f"S{int(speaker) + 1}" if isinstance(speaker, int | float) else "S1"
        if not mapped:
            continue  # an utterance with no words has no timings to dub against
        for part in split_long(mapped):
            segments.append(Segment(id=f"seg-{len(segments) + 1:04d}", start=round(part[0].start, 3),
                                    end=round(part[-1].end, 3), text=" ".join(w.text for w in part),
                                    speaker=label, words=part))
    duration = float((data.get("metadata") or {}).get("duration") or 0.0)
    if duration <= 0:
        duration = fallback_duration() or (segments[-1].end if segments else 0.0)
    return Transcript(language=lang, duration=round(duration, 3), segments=segments)


def split_long(words: list[Word]) -> list[list[Word]]:
    """Split a line longer than MAX_SEGMENT_S, recursively: at a sentence end if there is one, else at the
    widest pause; among equals, nearest the middle."""
    if len(words) < 2 or words[-1].end - words[0].start <= MAX_SEGMENT_S:
        return [words]
    mid = (len(words) - 1) / 2

    def score(i: int) -> tuple[bool, float, float]:
        sentence_end = words[i].text.endswith((".", "?", "!", "。", "？", "！"))
        return sentence_end, round(words[i + 1].start - words[i].end, 3), -abs(i - mid)

    i = max(range(len(words) - 1), key=score)
    return split_long(words[:i + 1]) + split_long(words[i + 1:])


# --------------------------------------------------------------------------------------------------
# Text to speech


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of a 16-bit PCM WAV. Raises ValueError when it is not one, or
    when the header declares more audio than arrived. Streamed WAVs may declare a placeholder size (0,
    or near 4 GiB); then all the bytes that arrived are the audio."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(data):
                raise ValueError("truncated fmt chunk")
            tag, channels, rate = struct.unpack_from("<HHI", data, body)
            bits = struct.unpack_from("<H", data, body + 14)[0]
            if tag not in (1, 0xFFFE) or bits != 16 or channels < 1:
                raise ValueError(f"unsupported WAV format (tag {tag}, {bits} bits, {channels} channels)")
            fmt = (channels, rate)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            channels, rate = fmt
            available = len(data) - body
            placeholder = size == 0 or size >= 0x7FFF0000
            if not placeholder and size > available:
                raise ValueError(f"truncated audio: the header declares {size} bytes, {available} arrived")
            n = available if placeholder else size
            n -= n % (2 * channels)
            pcm = np.frombuffer(data, dtype="<i2", count=n // 2, offset=body).astype(np.float32)
            if channels > 1:
                pcm = pcm.reshape(-1, channels).mean(axis=1)
            return (pcm / np.float32(32768.0)).astype(np.float32), int(rate)
        pos = body + size + (size & 1)
    raise ValueError("no data chunk")


def language_of(language: str) -> str:
    return _short_language(language)


class DeepgramTTS:
    """TextToSpeech with Deepgram Aura-2 (`/v1/speak`, linear16 WAV at 24 kHz). Thread-safe; at most
    `concurrency` calls are in flight at once."""

    name = "deepgram:aura-2"
    max_rate = AURA_MAX_SPEED

    def __init__(self, api_key: str | None, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 60.0,
                 retries: int = 3, concurrency: int = 4, voices: dict[str, list[str]] | None = None,
                 backoff: float = 0.5, max_backoff: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self._http = _make_client(api_key, base_url, timeout)
        self.timeout = timeout
        self.attempts = retries + 1
        self.concurrency = max(1, concurrency)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._voices = {k.lower(): list(v) for k, v in (voices or {}).items() if v}
        self._backoff, self._max_backoff, self._sleep = backoff, max_backoff, sleep

    def voices(self, language: str) -> list[str]:
        lang = language_of(language)
        found = self._voices.get(lang) or AURA2_VOICES.get(lang)
        if not found:
            raise UnknownLanguage(
                f"Deepgram Aura-2 cannot speak language {language!r}.",
                hint=f"Aura-2 speaks {', '.join(sorted(AURA2_VOICES))}; choose another voice engine "
                "(DUBSTUDIO_TTS) for other languages.", details={"language": language, "engine": self.name})
        return list(found)

    def max_rate_for(self, language: str) -> float:
        """The fastest rate Aura-2 offers in `language` (speed is documented for English and Spanish)."""
        return AURA_MAX_SPEED if language_of(language) in SPEED_LANGUAGES else 1.0

    def synthesize(self, text: str, language: str, voice: str | None = None, rate: float = 1.0) -> Speech:
        default = self.voices(language)[0]  # validates the language even when a voice is given
        voice = (voice or "").strip() or default
        text = text.strip()
        if not text:
            return Speech(np.zeros(0, dtype=np.float32), TTS_SAMPLE_RATE)
        if len(text) > TTS_MAX_CHARS:
            raise BadInput(f"A line of {len(text)} characters is longer than Deepgram Aura-2 accepts "
                           f"({TTS_MAX_CHARS}).", hint="Split the line into shorter segments.")
        speed = None
        if language_of(language) in SPEED_LANGUAGES and rate and abs(rate - 1.0) > 1e-3:
            speed = round(min(AURA_MAX_SPEED, max(AURA_MIN_SPEED, rate)), 3)

        def once() -> Speech:
            with self._slots:
                try:
                    # The whole answer is read inside the try: a failure mid-stream is retried too.
                    audio = b"".join(self.client.speak.v1.audio.generate(
                        text=text, model=voice, encoding="linear16", container="wav",
                        sample_rate=TTS_SAMPLE_RATE, speed=speed))
                except (ApiError, ParsingError, httpx.HTTPError) as exc:
                    raise vendor_error(exc, doing="synthesizing speech", timeout=self.timeout) from exc
            try:
                samples, sr = decode_wav(audio)
            except ValueError as exc:
                raise VendorError(f"Deepgram sent audio we could not read ({exc}).",
                                  hint="This is usually passing; it is retried.") from exc
            return Speech(samples, sr)

        return call_with_retries(once, vendor=VENDOR, attempts=self.attempts, base_delay=self._backoff,
                                 max_delay=self._max_backoff, sleep=self._sleep)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
