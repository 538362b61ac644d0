"""Offline text-to-speech with espeak-ng (from the `espeakng-loader` wheel, driven through ctypes).

Why a helper process: espeak-ng is not deterministic in a long-lived process. It seeds its noise
generator randomly and keeps pitch flutter and other state in static variables that survive
`espeak_Terminate`/`espeak_Initialize`, so the same line can come out different (even a different
length) the second time. Re-synthesized lines must be byte-identical (caches, re-runs, diffs), so:

* a single-threaded *server* process loads the library and calls `espeak_Initialize` once, and never
  speaks itself, so its state stays exactly "freshly initialized";
* for each request it forks a child that sets a fixed random seed, selects the voice and rate,
  synthesizes, writes raw int16 samples to the file named in the request and exits; the server reaps
  it and answers. Every line is thus made from the same starting state, in any process.

Where `os.fork` does not exist (Windows) the server synthesizes in-process after re-seeding: the
noise is then fixed but flutter state carries over between lines, so output can depend on what the
same server said before (weaker guarantee; a content-keyed cache upstream keeps re-runs stable).

Protocol (one JSON object per line): the server first prints {"ready", "sample_rate", "fork"};
a request is {"id", "text", "voice", "wpm", "seed", "out"} and its answer {"id", "ok",
"sample_rate", "samples", "words": [[char_pos, char_len, ms], ...]} or {"id", "ok": false,
"kind", "error"}. The server exits at end of input.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from ...domain import Speech, Word
from ...errors import BadInput, UnknownLanguage, VendorError

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 22050  # espeak-ng always synthesizes at 22.05 kHz
BASE_WPM = 175  # espeak's default speaking rate, i.e. rate=1.0
MIN_WPM, MAX_WPM = 80, 450  # espeakRATE_MINIMUM / espeakRATE_MAXIMUM
DEFAULT_SEED = 1
SERVER_ARG = "_espeak-server"  # hidden CLI subcommand that runs serve_forever() in a frozen app

# ISO 639-1 codes whose best espeak voice is not simply the code itself (or that espeak spells
# differently). Every other code espeak lists in its voice files maps to itself.
_PREFERRED: dict[str, str] = {
    "en": "en-us",
    "fr": "fr-fr",
    "zh": "cmn",
    "no": "nb",
}

_CHILD_TIMEOUT = 120.0  # seconds one synthesis may take inside the server before it is killed


# --------------------------------------------------------------------------------------------------
# Languages and voices (client side: no espeak library needed)


@cache
def _espeak_languages() -> frozenset[str]:
    """Language tags named in espeak's voice files ('en', 'en-gb', 'es-419', 'cmn', ...)."""
    import espeakng_loader

    tags: set[str] = set()
    for f in (Path(espeakng_loader.get_data_path()) / "lang").rglob("*"):
        if not f.is_file():
            continue
        tags.add(f.name.lower())
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in f.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "language":
                    tags.add(parts[1].lower())
    return frozenset(tags)


def voice_for(language: str) -> str:
    """The espeak voice for a language code ('en' -> 'en-us', 'es' -> 'es', 'pt-BR' -> 'pt-br').

    Raises UnknownLanguage when espeak-ng has no voice for it.
    """
    norm = language.strip().lower().replace("_", "-")
    known = _espeak_languages()
    if norm in _PREFERRED:
        return _PREFERRED[norm]
    if norm in known:
        return norm
    primary = norm.split("-", 1)[0]
    if primary in _PREFERRED:
        return _PREFERRED[primary]
    if primary in known and primary:
        return primary
    two_letter = sorted({t for t in known if len(t) == 2} | set(_PREFERRED))
    raise UnknownLanguage(
        f"The offline voice (espeak-ng) cannot speak language {language!r}.",
        hint=f"Use an ISO 639-1 code espeak-ng knows, one of: {', '.join(two_letter)}; "
             "or pick a cloud text-to-speech engine.",
        details={"language": language, "engine": "offline"},
    )


def wpm_for(rate: float) -> int:
    """espeak words per minute for a speed factor (1.0 = 175 wpm), clamped to espeak's range."""
    if not math.isfinite(rate) or rate <= 0:  # NaN, 0, negative: fall back to normal speed
        rate = 1.0
    return max(MIN_WPM, min(MAX_WPM, round(BASE_WPM * rate)))


# --------------------------------------------------------------------------------------------------
# Client


class _Server:
    """One helper process and its scratch folder. Holds no reference to the EspeakTTS that owns it,
    so a weakref.finalize on the owner can stop it at garbage collection or interpreter exit."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir: str | None = None
        self.sample_rate = SAMPLE_RATE
        self.next_id = 0

    @staticmethod
    def command() -> list[str]:
        if getattr(sys, "frozen", False):
            return [sys.executable, SERVER_ARG]
        return [sys.executable, "-m", "dubstudio.vendors.offline.espeak"]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.stop()
        env = dict(os.environ)
        if not getattr(sys, "frozen", False):  # make `-m dubstudio...` importable from any cwd
            root = str(Path(__file__).resolve().parents[3])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.tmpdir = tempfile.mkdtemp(prefix="dubstudio-espeak-")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, close_fds=True)
        hello = self._read_line(timeout=30.0)
        if not hello or not hello.get("ready"):
            self.stop()
            raise VendorError("The offline voice (espeak-ng) failed to start.",
                              hint=str((hello or {}).get("error", "")))
        self.sample_rate = int(hello.get("sample_rate", SAMPLE_RATE))

    def _read_line(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None if the server died or stayed silent past `timeout` (then it is
        killed: a Timer rather than select() so this also works on Windows pipes)."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        timer = threading.Timer(timeout, proc.kill)
        timer.daemon = True
        timer.start()
        try:
            line = proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            return None
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def request(self, req: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request and read its answer; None means the server is gone (caller restarts).

        The samples land in the file named by the answer's "out" (the caller removes it).
        """
        if not self.alive():
            self.start()
        proc = self.proc
        assert proc is not None and proc.stdin is not None and self.tmpdir is not None
        self.next_id += 1
        out = os.path.join(self.tmpdir, f"line-{self.next_id}.raw")
        req = {**req, "id": self.next_id, "out": out}
        try:
            proc.stdin.write(json.dumps(req).encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stop()
            return None
        answer = self._read_line(timeout)
        if answer is None or answer.get("id") != self.next_id:
            self.stop()
            return None
        answer["out"] = out
        return answer

    def stop(self) -> None:
        """End the server (EOF first, then kill) and always reap it, so no zombie is left."""
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


class EspeakTTS:
    """TextToSpeech with espeak-ng: offline, free, robotic, and byte-for-byte reproducible.

    One helper process per instance, started on first use, restarted if it dies, and stopped by
    close(), garbage collection or interpreter exit. Safe to call from several threads (requests
    are serialized, since the helper does one line at a time anyway).
    """

    name = "offline"
    max_rate = 2.0  # espeak speaks up to 450 wpm; the fit stage caps the speed-up far lower
    concurrency = 1  # one helper process speaks one line at a time
    VARIANTS = ("", "+m3", "+f3", "+m2", "+f2", "+m4", "+f4")  # distinct timbres for distinct speakers

    def voices(self, language: str) -> list[str]:
        """The language's espeak voice, then the same voice with other timbres."""
        base = voice_for(language)
        return [base + v for v in self.VARIANTS]

    def __init__(self, *, seed: int = DEFAULT_SEED, timeout: float = _CHILD_TIMEOUT + 10) -> None:
        self.seed = seed
        self.timeout = timeout
        self._lock = threading.Lock()
        self._server = _Server()
        self._finalizer = weakref.finalize(self, self._server.stop)  # also runs at exit

    def synthesize(self, text: str, language: str, voice: str | None = None,
                   rate: float = 1.0) -> Speech:
        """Speech for one line; `voice` None means the language's default espeak voice."""
        return self.synthesize_words(text, language, voice, rate)[0]

    def synthesize_words(self, text: str, language: str, voice: str | None = None,
                         rate: float = 1.0) -> tuple[Speech, list[Word]]:
        """Speech plus word timings from espeak's own word events (ends are approximate: the
        next word's start, pulled back over trailing silence)."""
        import numpy as np

        default_voice = voice_for(language)  # validates the language even if a voice is given
        voice = (voice or "").strip() or default_voice
        text = text.replace("\0", " ")
        if not text.strip():
            return Speech(np.zeros(0, dtype=np.float32), SAMPLE_RATE), []
        wpm = wpm_for(rate)

        with self._lock:
            answer = None
            for _attempt in range(2):  # one restart if the server had died
                answer = self._server.request(
                    {"text": text, "voice": voice, "wpm": wpm, "seed": self.seed}, self.timeout)
                if answer is not None:
                    break
            if answer is None:
                raise VendorError("The offline voice (espeak-ng) stopped while speaking.",
                                  retry_after=1.0)
            out = answer["out"]
            try:
                if not answer.get("ok"):
                    if answer.get("kind") == "voice":
                        raise BadInput(
                            f"espeak-ng has no voice {voice!r}.",
                            hint=f"Leave the voice empty to use {default_voice!r}, or name an "
                                 "espeak voice or language tag such as 'en-gb', 'es-419', 'fr-fr'.",
                            details={"voice": voice, "engine": "offline"})
                    raise VendorError(f"espeak-ng failed: {answer.get('error', 'unknown error')}")
                pcm = np.fromfile(out, dtype="<i2")
            finally:
                with contextlib.suppress(OSError):
                    os.remove(out)

        sr = int(answer.get("sample_rate", SAMPLE_RATE))
        samples = (pcm.astype(np.float32) / np.float32(32768.0)).astype(np.float32)
        return Speech(samples, sr), _words(text, answer.get("words", []), samples, sr)

    def close(self) -> None:
        """Stop the helper process now (a later call starts a new one)."""
        with self._lock:
            self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _words(text: str, events: list[list[int]], samples: np.ndarray, sr: int) -> list[Word]:
    """Words from (1-based char position, char length, ms) events; repeated events for one word
    (spelled-out letters) collapse into the first."""
    import numpy as np

    seen: set[int] = set()
    starts: list[tuple[str, float]] = []
    for pos, length, ms in events:
        if pos in seen or length <= 0:
            continue
        seen.add(pos)
        starts.append((text[pos - 1:pos - 1 + length], ms / 1000.0))
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    words: list[Word] = []
    for i, (w, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(samples) / sr
        a, b = int(start * sr), int(end * sr)
        inside = loud[(loud >= a) & (loud < b)]
        if inside.size:
            end = (int(inside[-1]) + 1) / sr
        words.append(Word(w, round(start, 3), round(max(end, start), 3)))
    return words


# --------------------------------------------------------------------------------------------------
# Server (runs in the helper process; imports no numpy, so it starts fast)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


class _Engine:
    """espeak-ng loaded and initialized once; say() must run in a fresh fork to be reproducible."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]  # without it the upper bits are junk
        lib.espeak_ng_SetRandSeed.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint,
                                     ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
        self.lib = lib
        self.pcm = bytearray()
        self.words: list[list[int]] = []
        self._callback = _SynthCallback(self._on_audio)  # kept alive for the process lifetime
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data at {data.decode()}")
        self.sample_rate = int(rate)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if wav and n > 0:
            self.pcm += ctypes.string_at(wav, n * 2)
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_WORD:
                self.words.append([ev.text_position, ev.length, ev.audio_position])
            i += 1
        return 0

    def say(self, text: str, voice: str, wpm: int, seed: int) -> dict[str, Any]:
        """Synthesize into self.pcm / self.words; returns an error answer or {"ok": True}."""
        lib = self.lib
        self.pcm.clear()
        self.words.clear()
        lib.espeak_ng_SetRandSeed(seed)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            # Not a voice name ('fr-fr', 'en-gb', 'es-mx'): let espeak pick by language tag.
            props = _Voice(None, voice.encode(), None, 0, 0, 0, 0, 0, None)
            if lib.espeak_SetVoiceByProperties(ctypes.byref(props)) != 0:
                return {"ok": False, "kind": "voice", "error": f"no espeak voice {voice!r}"}
        lib.espeak_SetParameter(_PARAM_RATE, int(wpm), 0)
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        status = status or lib.espeak_Synchronize()
        if status != 0:
            return {"ok": False, "kind": "synth", "error": f"espeak_Synth status {status:#x}"}
        return {"ok": True}


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _handle_forked(engine: _Engine, req: dict[str, Any]) -> dict[str, Any]:
    """Run one synthesis in a forked child, so every line starts from the pristine parent state."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            os.close(r)
            answer = engine.say(req["text"], req["voice"], req["wpm"], req["seed"])
            if answer["ok"]:
                _write_file(req["out"], bytes(engine.pcm))
                answer = {"ok": True, "samples": len(engine.pcm) // 2, "words": engine.words}
            os.write(w, json.dumps(answer).encode())
            code = 0
        except BaseException as exc:
            with contextlib.suppress(Exception):
                os.write(w, json.dumps({"ok": False, "kind": "synth", "error": repr(exc)}).encode())
        finally:
            os._exit(code)  # skip atexit handlers and the parent's buffered I/O
    os.close(w)
    chunks: list[bytes] = []
    timed_out = False
    try:
        deadline = time.monotonic() + _CHILD_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)  # always reap: no zombies
    if timed_out:
        return {"ok": False, "kind": "synth", "error": f"timed out after {_CHILD_TIMEOUT:.0f} s"}
    try:
        result: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError:
        return {"ok": False, "kind": "synth", "error": f"synthesis process died (status {status})"}
    return result


def _handle_inline(engine: _Engine, req: dict[str, Any]) -> dict[str, Any]:
    """No fork (Windows): same seed every time, but espeak's static state carries over."""
    answer = engine.say(req["text"], req["voice"], req["wpm"], req["seed"])
    if answer["ok"]:
        _write_file(req["out"], bytes(engine.pcm))
        answer = {"ok": True, "samples": len(engine.pcm) // 2, "words": list(engine.words)}
    return answer


def serve_forever(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
    """The helper process: answer synthesis requests line by line until end of input."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client ends us (EOF), not Ctrl-C
    if stdout is None:
        # Keep the protocol on a private copy of fd 1 and point fd 1 at stderr, so nothing the
        # C library might print can corrupt the answers.
        stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        with contextlib.suppress(OSError):
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    stdin = stdin or sys.stdin.buffer

    def send(obj: dict[str, Any]) -> None:
        stdout.write(json.dumps(obj).encode() + b"\n")
        stdout.flush()

    try:
        engine = _Engine()
    except Exception as exc:
        send({"ready": False, "error": str(exc)})
        return
    forking = hasattr(os, "fork")
    send({"ready": True, "sample_rate": engine.sample_rate, "fork": forking})
    handle = _handle_forked if forking else _handle_inline
    for line in stdin:
        if not line.strip():
            continue
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            answer = handle(engine, req)
        except Exception as exc:
            answer = {"ok": False, "kind": "synth", "error": repr(exc)}
        answer.update(id=req_id, sample_rate=engine.sample_rate)
        send(answer)


if __name__ == "__main__":
    serve_forever()
