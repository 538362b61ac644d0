"""run: the stages in order for one job, each skipped when its inputs have not changed.

Each stage leaves its output under the job's folder and a marker `stages/<name>.key` holding a hash of
its inputs; a rerun or a resume after a crash redoes only stages whose key changed, and within
synthesize only lines not yet spoken. Languages run in parallel. The pipeline knows nothing of the
database or the queue: it tells a Reporter what happens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..domain import Segment, Transcript, Word
from ..errors import AwaitingTranslation, BadInput, DubError, NoSpeech
from ..languages import ISO639_2, NAMES
from ..vendors.base import Engines
from . import captions, costs, fit, ingest, manifest, media, mix, synthesize, translate
from .layout import (
    EDITS,
    MASTER,
    PREVIEW,
    SOURCE_EDITS,
    SPEAKER_EDITS,
    apply_speaker_edits,
    read_json,
    sha256_file,
    write_json,
)
from .loudness import finish

log = logging.getLogger(__name__)

@dataclass
class JobSpec:
    job_id: str
    source: Path
    workdir: Path
    source_language: str
    targets: list[str]
    background: Path | None = None  # stems: the source is the voice track, this the rest
    sample_rate: int = 48000
    duck_db: float = -14.0
    duck_ramp_ms: float = 150.0
    max_stretch: float = 1.25
    loudness_target: float = -16.0
    voices: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> speaker -> voice
    source_name: str = ""  # the name the user gave the file, for the manifest
    cache_dir: Path | None = None  # engine answers kept by content, shared by jobs: nothing is paid twice
    prices: dict[str, float] = field(default_factory=dict)  # overrides of costs.DEFAULT_PRICES
    parallel: int = field(default_factory=lambda: os.cpu_count() or 1)


class Reporter(Protocol):
    def stage(self, language: str | None, stage: str, fraction: float) -> None:
        """`language` None: a stage shared by every language."""

    def stage_done(self, language: str | None, stage: str, outputs: list[str], reused: bool) -> None:
        """A stage finished (or its earlier output was `reused`); `outputs` are paths in the job folder."""

    def vendor_call(self, language: str | None, engine: str, units: float, unit: str, cost: float) -> None:
        """An engine was paid for: `units` of `unit` (seconds, characters) costing `cost` US dollars."""

    def language_done(self, language: str, entry: dict[str, Any]) -> None: ...

    def language_failed(self, language: str, error: DubError) -> None: ...


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class _Markers:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, name: str, key: str) -> bool:
        p = self.dir / f"{name}.key"
        return p.exists() and p.read_text() == key

    def mark(self, name: str, key: str) -> None:
        tmp = self.dir / f"{name}.key.part"
        tmp.write_text(key)
        tmp.replace(self.dir / f"{name}.key")


def _cached(spec: JobSpec, kind: str, key: str, make: Any) -> Any:
    """An engine's answer from the shared cache, or `make()` stored there for next time."""
    if spec.cache_dir is None:
        return make()
    path = spec.cache_dir / kind / f"{key}.json"
    if path.exists():
        return read_json(path)
    value = make()
    write_json(path, value)
    return value


def clips_folder(spec: JobSpec, lang: str) -> Path:
    """Clips are named by their content, so one folder can serve every job."""
    return spec.cache_dir / "clips" if spec.cache_dir else spec.workdir / lang / "clips"


@dataclass
class _Shared:
    """What every language starts from."""

    transcript: Transcript
    inputs: dict[str, Any]
    key: str


def run(spec: JobSpec, engines: Engines, reporter: Reporter) -> dict[str, Any]:
    """Run every stage; returns the manifest. A language that fails is reported and the others go on;
    a failure of a shared stage raises."""
    wd, marks = spec.workdir, _Markers(spec.workdir)
    meter = costs.Meter(spec.prices, wd / "costs.json", reporter.vendor_call)
    engines = costs.metered(engines, meter)
    source_sha = sha256_file(spec.source)
    background_sha = sha256_file(spec.background) if spec.background else None

    k_ingest = _key("ingest", source_sha, background_sha, spec.sample_rate)
    reused = marks.done("ingest", k_ingest)
    if not reused:
        reporter.stage(None, "ingest", 0.0)
        write_json(wd / "work" / "ingest.json", ingest.run(spec.source, wd, spec.sample_rate, spec.background))
        marks.mark("ingest", k_ingest)
    inputs = read_json(wd / "work" / "ingest.json")
    reporter.stage(None, "ingest", 1.0)
    reporter.stage_done(None, "ingest", ["work/source.wav", "work/stt.wav"], reused)

    k_stt = _stt_key(k_ingest, engines, spec)
    reused = marks.done("transcribe", k_stt)
    if not reused:
        reporter.stage(None, "transcribe", 0.0)
        answer = _cached(spec, "stt", _key(sha256_file(wd / "work" / "stt.wav"), engines.stt.name,
                                           spec.source_language),
                         lambda: engines.stt.transcribe(wd / "work" / "stt.wav", spec.source_language,
                                                        lambda f: reporter.stage(None, "transcribe", f)).to_dict())
        write_json(wd / "transcript.json", answer)
        marks.mark("transcribe", k_stt)
    transcript = Transcript.from_dict(read_json(wd / "transcript.json"))
    source_edits = read_json(wd / SOURCE_EDITS) if (wd / SOURCE_EDITS).exists() else {}
    _apply_source_edits(transcript, source_edits, engines, wd / "work" / "stt.wav")
    speakers = apply_speaker_edits(transcript, wd)
    k_stt = _key(k_stt, source_edits, speakers)  # edited lines are translated and spoken again (see output_key)
    reporter.stage(None, "transcribe", 1.0)
    reporter.stage_done(None, "transcribe", ["transcript.json"], reused)
    if not transcript.segments:
        raise NoSpeech("No speech was found in the source.",
                       hint="Check that the file has spoken words and that the source language is right.")
    src = transcript.language
    captions.write(wd / f"captions.{src}.srt", wd / f"captions.{src}.vtt",
                   [captions.Item(s.start, s.end, s.text, s.words) for s in transcript.segments])

    shared = _Shared(transcript, inputs, k_stt)
    languages: dict[str, Any] = {}

    local_work = threading.BoundedSemaphore(max(1, spec.parallel))

    def one(lang: str) -> None:
        try:
            languages[lang] = _language(spec, engines, reporter, marks, shared, lang, local_work)
            reporter.language_done(lang, languages[lang])
        except DubError as err:
            reporter.language_failed(lang, err)
        except Exception as exc:  # a bug in one language must not take the others down
            log.exception("language %s failed unexpectedly", lang)
            reporter.language_failed(lang, DubError(f"An unexpected error stopped {lang}: {exc!r}"))

    # Every language at once: their vendor calls overlap; `local_work` keeps the CPU-heavy stages to the cores.
    with ThreadPoolExecutor(max(1, len(spec.targets))) as pool:
        list(pool.map(one, spec.targets))

    data: dict[str, Any] = {
        "job_id": spec.job_id,
        "source": {"duration": round(inputs["duration"], 3), "sha256": source_sha, "language": src,
                   "filename": spec.source_name or spec.source.name},
        "captions": {src: {"srt": f"captions.{src}.srt", "vtt": f"captions.{src}.vtt"}},
        "languages": {lang: languages[lang] for lang in spec.targets if lang in languages},
        "costs": meter.summary(),
    }
    if "background" in inputs:
        data["source"]["background"] = {"sha256": background_sha, **inputs["background"]}
    done = [lang for lang in spec.targets if lang in languages]
    if inputs.get("has_video") and done:
        everything = wd / f"video.all{media.video_container(spec.source)}"
        media.mux(spec.source, [(wd / lang / "dub.m4a", ISO639_2[lang], NAMES[lang]) for lang in done], everything,
                  keep_original=True)
        data["video_all_languages"] = manifest.artifact("video_all", everything, wd)
    manifest.write(wd / "manifest.json", data)
    return data


def _apply_source_edits(transcript: Transcript, edits: dict[str, str], engines: Engines, stt_wav: Path) -> None:
    """Lines a person corrected: their words are timed again by forced alignment where the speech engine
    can, else spread evenly over the line (captions need times to split on)."""
    for seg in transcript.segments:
        text = edits.get(seg.id, "").strip()
        if text and text != seg.text:
            seg.text = text
            aligned = getattr(engines.stt, "align", lambda *a: None)(stt_wav, seg.start, seg.end, text)
            words = text.split()
            step = (seg.end - seg.start) / max(1, len(words))
            seg.words = aligned or [Word(w, round(seg.start + i * step, 3), round(seg.start + (i + 1) * step, 3))
                                    for i, w in enumerate(words)]


def _language(spec: JobSpec, engines: Engines, reporter: Reporter, marks: _Markers, shared: _Shared,
              lang: str, local_work: threading.BoundedSemaphore) -> dict[str, Any]:
    ld = spec.workdir / lang
    transcript, segments = shared.transcript, shared.transcript.segments
    if lang == transcript.language:
        raise BadInput(f"The source is already in {NAMES.get(lang, lang)}.",
                       hint="Remove it from the target languages.")
    duration = shared.inputs["duration"]
    tr_path = ld / "translation.json"
    k_tr = _translate_key(shared.key, engines, lang)
    reused = marks.done(f"translate.{lang}", k_tr)
    if not reused:
        reporter.stage(lang, "translate", 0.0)
        texts = [(seg.id, seg.text, seg.start, seg.end) for seg in segments]
        translated = {} if engines.translator.name == "manual" else _cached(
            spec, "translate", _key(texts, engines.translator.name, transcript.language, lang),
            lambda: translate.run(engines.translator, segments, transcript.language, lang, duration))
        write_json(tr_path, translated)
        marks.mark(f"translate.{lang}", k_tr)
    translations, edits = translations_of(ld)
    missing = [seg.id for seg in segments if not translations.get(seg.id, "").strip()]
    if engines.translator.name == "manual" and missing:
        raise AwaitingTranslation(f"{len(missing)} of {len(segments)} {NAMES.get(lang, lang)} lines wait for a "
                                  "translation.", hint="Enter a translation for every line, in the job page or "
                                  "through the API; the dub goes on by itself.", details={"missing": missing})
    reporter.stage(lang, "translate", 1.0)
    reporter.stage_done(lang, "translate", [f"{lang}/translation.json"], reused)

    voices = synthesize.assign_voices(segments, engines.tts, lang, spec.voices.get(lang))
    k_out = _output_key(spec, engines, k_tr, translations, voices)
    result = ld / "result.json"
    if marks.done(f"deliver.{lang}", k_out) and result.exists():
        reporter.stage_done(lang, "deliver", [f"{lang}/result.json"], True)
        return dict(read_json(result))

    (ld / MASTER).unlink(missing_ok=True)  # the master is about to be remade: no preview may patch it meanwhile
    reporter.stage(lang, "synthesize", 0.0)
    lines = synthesize.run(engines.tts, engines.translator, segments, translations, transcript.language, lang,
                           duration, clips_folder(spec, lang), spec.sample_rate, spec.max_stretch, voices,
                           lambda f: reporter.stage(lang, "synthesize", f), typed=frozenset(edits))
    synthesize.save(ld / "lines.json", lines)
    reporter.stage_done(lang, "synthesize", [f"{lang}/lines.json"], False)

    with local_work:
        return _finish_language(spec, reporter, marks, shared, lang, segments, lines, k_out, translations,
                                result)


def _stt_key(k_ingest: str, engines: Engines, spec: JobSpec) -> str:
    return _key(k_ingest, engines.stt.name, spec.source_language)


def _translate_key(shared_key: str, engines: Engines, lang: str) -> str:
    return _key(shared_key, engines.translator.name, lang)


def _output_key(spec: JobSpec, engines: Engines, k_tr: str, translations: dict[str, str],
                voices: dict[str, str]) -> str:
    return _key(k_tr, translations, engines.tts.name, voices, spec.sample_rate, spec.duck_db, spec.duck_ramp_ms,
                spec.max_stretch, spec.loudness_target, spec.background is not None)


def output_key(spec: JobSpec, engines: Engines, lang: str, translations: dict[str, str],
               voices: dict[str, str]) -> str | None:
    """The key a run would give `lang`'s deliverables for these translations, from the stage markers and
    the corrected source lines (None before the source was ingested): equal to a language's last
    `MASTER` key when nothing but these translations changed since."""
    ingest = spec.workdir / "stages" / "ingest.key"
    if not ingest.exists():
        return None
    wd = spec.workdir
    source_edits = read_json(wd / SOURCE_EDITS) if (wd / SOURCE_EDITS).exists() else {}
    speakers = read_json(wd / SPEAKER_EDITS) if (wd / SPEAKER_EDITS).exists() else {}
    shared = _key(_stt_key(ingest.read_text(), engines, spec), source_edits, speakers)
    return _output_key(spec, engines, _translate_key(shared, engines, lang), translations, voices)


def translations_of(ld: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A language's lines to speak, and those typed by hand, which win over the engine's."""
    edits = read_json(ld / EDITS) if (ld / EDITS).exists() else {}
    engine = read_json(ld / "translation.json") if (ld / "translation.json").exists() else {}
    return {**engine, **{k: v for k, v in edits.items() if v.strip()}}, edits


def _finish_language(spec: JobSpec, reporter: Reporter, marks: _Markers, shared: _Shared, lang: str,
                     segments: list[Segment], lines: list[synthesize.Line], k_out: str,
                     translations: dict[str, str], result: Path) -> dict[str, Any]:
    """fit, mix, captions and deliver: the CPU-bound end of a language."""
    wd, ld = spec.workdir, spec.workdir / lang
    reporter.stage(lang, "fit", 0.0)
    decisions, placements = fit.run(segments, lines, clips_folder(spec, lang), spec.sample_rate,
                                    wd / "work" / "source.wav", ld / "fitted", spec.max_stretch)
    reporter.stage_done(lang, "fit", [f"{lang}/fitted/{p.clip.name}" for p in placements], False)

    reporter.stage(lang, "mix", 0.0)
    mix_wav, voice_wav = ld / "mix.wav", ld / "voice.wav"
    background = wd / "work" / "background.wav" if spec.background else None
    mix.run(wd / "work" / "source.wav", placements, mix_wav, voice_wav, spec.duck_db, spec.duck_ramp_ms, background)
    reporter.stage_done(lang, "mix", [f"{lang}/mix.wav", f"{lang}/voice.wav"], False)

    reporter.stage(lang, "captions", 0.0)
    spoken = {line.segment_id: line.text for line in lines}
    srt_path, vtt_path = ld / "captions.srt", ld / "captions.vtt"
    captions.write(srt_path, vtt_path, [captions.Item(d.dub_start, d.dub_end, spoken[d.segment_id])
                                        for d in decisions if spoken[d.segment_id] and d.dub_end > d.dub_start])
    reporter.stage_done(lang, "captions", [f"{lang}/captions.srt", f"{lang}/captions.vtt"], False)

    reporter.stage(lang, "deliver", 0.0)
    master, m4a = ld / "dub.wav", ld / "dub.m4a"
    level, used = finish(mix_wav, spec.loudness_target, master, m4a)
    outputs = [("audio_wav", master), ("audio", m4a), ("voice_wav", voice_wav), ("captions_srt", srt_path),
               ("captions_vtt", vtt_path)]
    if shared.inputs.get("has_video"):
        video = ld / f"video{media.video_container(spec.source)}"
        media.mux(spec.source, [(m4a, ISO639_2[lang], NAMES[lang])], video)
        outputs.append(("video", video))
    mix_wav.unlink()  # the master holds it now; a rerun of this language remakes it
    arts = [manifest.artifact(kind, path, wd) for kind, path in outputs]
    entry = manifest.language_entry(segments, spoken, decisions, level, arts)
    write_json(result, entry)
    write_json(ld / MASTER, {"key": k_out, **used, "translations": translations})
    (ld / PREVIEW).unlink(missing_ok=True)
    marks.mark(f"deliver.{lang}", k_out)
    reporter.stage(lang, "deliver", 1.0)
    reporter.stage_done(lang, "deliver", [str(p.relative_to(wd)) for _, p in outputs], False)
    return entry


DELIVERABLE_GLOBS = ("manifest.json", "captions.*.srt", "captions.*.vtt", "video.all.*", "*/dub.wav", "*/dub.m4a",
                     "*/voice.wav", "*/captions.srt", "*/captions.vtt", "*/video.*")


def export(workdir: Path, out_dir: Path) -> list[Path]:
    """Copy the deliverables (not the working files) to `out_dir`, keeping the manifest's relative paths."""
    copied = []
    for pattern in DELIVERABLE_GLOBS:
        for src in sorted(workdir.glob(pattern)):
            dst = out_dir / src.relative_to(workdir)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            copied.append(dst)
    return copied
