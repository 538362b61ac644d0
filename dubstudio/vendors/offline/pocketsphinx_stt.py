"""Offline English speech-to-text with pocketsphinx (CMU Sphinx), no network and no API key.

Audio flows through in fixed blocks: a voice-activity endpointer cuts it into utterances, each
utterance is decoded on its own, and its words are grouped into subtitle-like segments. Memory
stays bounded by the longest utterance (capped at MAX_UTTERANCE_S), whatever the file length.

Each utterance is handed to the decoder whole (`process_raw(..., full_utt=True)`) because the
model's cepstral mean normalisation is "batch": it needs the utterance's own mean. Streaming
the same audio in small chunks falls back to a default mean and, measured on jfk-11s, turns
"and all my fellow america ... what your country can do for you" into "and i got mine are a
matter ...". Buffering one capped utterance keeps that accuracy at a bounded cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...domain import Segment, Transcript, Word
from ...errors import BadInput, NotMedia, UnknownLanguage
from ..base import Progress

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # mono s16

PAUSE_S = 0.4  # a silence this long between words ends a subtitle line
MAX_SEGMENT_S = 8.0  # longer lines are split at their largest internal pause
MAX_UTTERANCE_S = 20.0  # the decoder never holds more than this; also bounds search memory
CUT_SEARCH_S = 5.0  # a forced cut looks for the quietest frame in this tail of the utterance
BLOCK_FRAMES = 50  # endpointer frames (30 ms each) read per block: 1.5 s
ALIGN_PAD_S = 0.25  # seconds of audio either side of a line given to forced alignment
PROGRESS_STEP = 0.005  # report at most ~200 progress updates per file

_VARIANT = re.compile(r"\(\d+\)$")  # 'the(2)': second pronunciation of 'the'


def _is_filler(token: str) -> bool:
    """<s>, </s>, <sil>, [NOISE], [SPEECH] and ++GARBAGE++-style tokens are not words."""
    return token[:1] in "<[+" or not token


@dataclass
class _Utterance:
    """Speech the endpointer is still delivering: its PCM and where it starts in the file."""

    start: float
    pcm: bytearray


class PocketsphinxSTT:
    """The SpeechToText engine used when no cloud recogniser is configured (DUBSTUDIO_STT=offline)."""

    name = "offline"

    def transcribe(self, wav_path: Path, language: str, progress: Progress | None = None) -> Transcript:
        """Segments with word timings from a 16 kHz mono WAV; English only. Silence gives no segments."""
        lang = _check_language(language)
        duration = _duration(Path(wav_path))
        segments = list(self.iter_segments(Path(wav_path), progress))
        return Transcript(language=lang, duration=duration, segments=segments)

    def align(self, wav_path: Path, start: float, end: float, text: str) -> list[Word]:
        """Word timings for a known transcript of [start, end) by forced alignment, far more reliable
        than free recognition; words the dictionary lacks make it fail, and then the words are spread
        evenly over the span (a caption split needs times, not perfection)."""
        import soundfile as sf
        from pocketsphinx import Decoder

        words = re.findall(r"[\w']+", text)
        if not words:
            return []
        # A little room either side: a line's edges are where recognition was least sure.
        lo, hi = max(0.0, start - ALIGN_PAD_S), end + ALIGN_PAD_S
        pcm, _ = sf.read(wav_path, start=int(lo * SAMPLE_RATE), stop=int(hi * SAMPLE_RATE), dtype="int16")
        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="ERROR")
        try:
            decoder.set_align_text(" ".join(w.lower() for w in words))
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
            frate = float(decoder.config["frate"])
            found = [s for s in decoder.seg() or () if not _is_filler(s.word)]
        except (RuntimeError, ValueError):  # a word outside the dictionary, or no alignment
            found = []
        if len(found) == len(words):
            return [Word(w, round(lo + s.start_frame / frate, 3), round(lo + (s.end_frame + 1) / frate, 3))
                    for w, s in zip(words, found, strict=True)]
        step = (end - start) / len(words)
        return [Word(w, round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i, w in enumerate(words)]

    def iter_segments(self, wav_path: Path, progress: Progress | None = None) -> Iterator[Segment]:
        """Yield segments in time order as soon as a pause closes them, so callers need not wait.

        A fresh Decoder per call: its state (CMN estimate) would otherwise carry over from the
        previous file and the same file could transcribe differently the second time.
        """
        # Imported here: loading pocketsphinx costs time that importing the engine module should not.
        from pocketsphinx import Decoder, Endpointer

        duration = _duration(wav_path)
        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="ERROR")
        frate = float(decoder.config["frate"])
        endpointer = Endpointer(sample_rate=SAMPLE_RATE)
        frame_bytes = endpointer.frame_bytes

        def decode(utt: _Utterance) -> list[Word]:
            decoder.start_utt()
            decoder.process_raw(bytes(utt.pcm), full_utt=True)
            decoder.end_utt()
            words = []
            for s in decoder.seg():
                if _is_filler(s.word):
                    continue
                text = _VARIANT.sub("", s.word)
                start = round(utt.start + s.start_frame / frate, 3)
                # Frame-rounded ends may overshoot the file's last sample by a few ms.
                end = min(round(utt.start + (s.end_frame + 1) / frate, 3), duration)
                words.append(Word(text=text, start=start, end=end))
            return words

        grouper = _Grouper()
        reporter = _Reporter(progress)
        utt: _Utterance | None = None
        total = 0
        consumed = 0
        for block in _pcm_blocks(wav_path, frame_bytes * BLOCK_FRAMES):
            total = max(total, block.total_bytes)
            data, last = block.pcm, block.last
            pos = 0
            while pos < len(data):
                frame = data[pos:pos + frame_bytes]
                pos += frame_bytes
                was_in_speech = endpointer.in_speech
                if len(frame) < frame_bytes:  # only the file's final partial frame
                    speech = endpointer.end_stream(frame) if was_in_speech else None
                else:
                    speech = endpointer.process(frame)
                if speech is None:
                    continue
                if utt is None:
                    utt = _Utterance(start=endpointer.speech_start, pcm=bytearray())
                utt.pcm += speech
                if not endpointer.in_speech:  # the endpointer heard the speech stop
                    yield from grouper.add(decode(utt))
                    utt = None
                elif len(utt.pcm) >= MAX_UTTERANCE_S * BYTES_PER_SECOND:
                    head, utt = _cut_quietest(utt, frame_bytes)
                    yield from grouper.add(decode(head))
            if last:
                if endpointer.in_speech:  # the file ended mid-speech: take what the endpointer holds
                    speech = endpointer.end_stream(bytes(2))  # one silent sample; b"" is rejected
                    if speech is not None:
                        if utt is None:
                            utt = _Utterance(start=endpointer.speech_start, pcm=bytearray())
                        utt.pcm += speech
                if utt is not None and utt.pcm:
                    yield from grouper.add(decode(utt))
                utt = None
            consumed += len(data)
            reporter.report(consumed / total if total else 1.0)
        yield from grouper.flush()
        reporter.report(1.0)


def _check_language(language: str) -> str:
    """'auto' means English here: the bundled model cannot identify or decode other languages."""
    norm = (language or "auto").strip().lower().replace("_", "-")
    if norm == "auto" or norm.split("-")[0] == "en":
        return "en"
    raise UnknownLanguage(
        f"The offline recogniser only knows English, not {language!r}.",
        hint="Use --language en, or set DUBSTUDIO_STT=deepgram (with a Deepgram key) for other languages.",
        details={"language": language, "engine": "offline"},
    )


def _duration(path: Path) -> float:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise NotMedia(f"Cannot read audio from {path.name}.", hint="Pass a WAV file.") from exc
    return round(info.frames / info.samplerate, 3) if info.samplerate else 0.0


@dataclass
class _Block:
    pcm: bytes
    total_bytes: int
    last: bool


def _pcm_blocks(path: Path, block_bytes: int) -> Iterator[_Block]:
    """16 kHz mono s16le PCM in blocks. Tolerates other sample formats and downmixes channels."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise NotMedia(f"Cannot read audio from {path.name}.", hint="Pass a WAV file.") from exc
    with f:
        if f.samplerate != SAMPLE_RATE:
            raise BadInput(
                f"The offline recogniser needs 16 kHz audio; {path.name} is {f.samplerate} Hz.",
                hint="Decode the media with the ingest stage first (16 kHz mono WAV).",
            )
        total = f.frames * 2
        n = block_bytes // 2
        done = 0
        while True:
            data = f.read(n, dtype="int16", always_2d=True)
            if data.shape[0] == 0:
                if done == 0:
                    yield _Block(b"", total, True)
                return
            mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1).astype(np.int16)
            done += data.shape[0]
            yield _Block(mono.astype("<i2").tobytes(), total, done >= f.frames)


def _cut_quietest(utt: _Utterance, frame_bytes: int) -> tuple[_Utterance, _Utterance]:
    """Split an over-long utterance at its quietest frame near the end, where a word is least likely."""
    pcm = np.frombuffer(bytes(utt.pcm), dtype="<i2")
    frame = frame_bytes // 2
    n_frames = len(pcm) // frame
    first = max(1, n_frames - int(CUT_SEARCH_S * SAMPLE_RATE / frame))
    frames = pcm[first * frame:n_frames * frame].astype(np.float64).reshape(-1, frame)
    energy = (frames**2).mean(axis=1)
    cut = (first + int(np.argmin(energy))) * frame  # argmin picks the earliest on ties: deterministic
    head = _Utterance(start=utt.start, pcm=bytearray(utt.pcm[:cut * 2]))
    tail = _Utterance(start=utt.start + cut / SAMPLE_RATE, pcm=bytearray(utt.pcm[cut * 2:]))
    return head, tail


class _Grouper:
    """Groups words into lines. Holds back only the last open line, which the next words may extend."""

    def __init__(self) -> None:
        self._open: list[Word] = []
        self._count = 0

    def add(self, words: list[Word]) -> Iterator[Segment]:
        for w in words:
            if self._open and w.start - self._open[-1].end >= PAUSE_S:
                yield from self._close()
            self._open.append(w)

    def flush(self) -> Iterator[Segment]:
        if self._open:
            yield from self._close()

    def _close(self) -> Iterator[Segment]:
        for part in _split_long(self._open):
            self._count += 1
            yield Segment(
                id=f"seg-{self._count:04d}",
                start=part[0].start,
                end=part[-1].end,
                text=" ".join(w.text for w in part),
                speaker="S1",
                words=list(part),
            )
        self._open = []


def _split_long(words: list[Word]) -> list[list[Word]]:
    """Split a line longer than MAX_SEGMENT_S at its largest pause, recursively, so lines stay readable."""
    if len(words) < 2 or words[-1].end - words[0].start <= MAX_SEGMENT_S:
        return [words]
    gaps = [words[i + 1].start - words[i].end for i in range(len(words) - 1)]
    widest = max(gaps)
    mid = (len(words) - 1) / 2
    # Among equal widest pauses, cut nearest the middle so both halves shrink.
    i = min((j for j, g in enumerate(gaps) if g == widest), key=lambda j: (abs(j - mid), j))
    return _split_long(words[:i + 1]) + _split_long(words[i + 1:])


class _Reporter:
    """Calls progress with non-decreasing fractions, skipping steps too small to show."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._last = -1.0

    def report(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if self._progress is None or fraction <= self._last:
            return
        if fraction < 1.0 and fraction - self._last < PROGRESS_STEP:
            return
        self._last = fraction
        self._progress(fraction)
