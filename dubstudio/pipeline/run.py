"""run: the stages in order for one job, each skipped when its inputs have not changed.

Each stage leaves its output under the job's folder and a marker `stages/<name>.key` holding a hash of
its inputs; a rerun or a resume after a crash redoes only stages whose key changed. The pipeline knows
nothing of the database or the queue: it tells a Reporter what happens.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..domain import FitDecision, Segment, Transcript
from ..errors import DubError, NoSpeech
from ..vendors.base import Engines
from . import captions, fit, ingest, manifest, media, mix, synthesize, translate
from .audio import sha256_file
from .loudness import normalize

# Share of a language's progress each stage stands for; ingest and transcribe are shared by all languages.
WEIGHTS = {"ingest": 0.05, "transcribe": 0.25, "translate": 0.15, "synthesize": 0.30, "fit": 0.05,
           "mix": 0.10, "captions": 0.02, "deliver": 0.08}
STAGES = list(WEIGHTS)


def overall(stage: str, fraction: float) -> float:
    """Progress 0..1 of a language when `stage` is `fraction` done."""
    before = sum(WEIGHTS[s] for s in STAGES[: STAGES.index(stage)])
    return round(min(1.0, before + WEIGHTS[stage] * max(0.0, min(1.0, fraction))), 4)


@dataclass
class JobSpec:
    job_id: str
    source: Path
    workdir: Path
    source_language: str
    targets: list[str]
    sample_rate: int = 48000
    duck_db: float = -14.0
    duck_ramp_ms: float = 150.0
    max_stretch: float = 1.25
    loudness_target: float = -16.0
    voices: dict[str, str] = field(default_factory=dict)  # by language
    source_name: str = ""  # the name the user gave the file, for the manifest


class Reporter(Protocol):
    def stage(self, language: str | None, stage: str, fraction: float) -> None:
        """`language` None: a stage shared by every language."""

    def stage_done(self, language: str | None, stage: str, outputs: list[str], reused: bool) -> None:
        """A stage finished (or its earlier output was `reused`); `outputs` are paths in the job folder."""

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


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def run(spec: JobSpec, engines: Engines, reporter: Reporter) -> dict[str, Any]:
    """Run every stage; returns the manifest. A language that fails is reported and the others go on;
    a failure of a shared stage raises."""
    wd, marks = spec.workdir, _Markers(spec.workdir)
    source_sha = sha256_file(spec.source)

    k_ingest = _key("ingest", source_sha, spec.sample_rate)
    reused = marks.done("ingest", k_ingest)
    if not reused:
        reporter.stage(None, "ingest", 0.0)
        duration = ingest.run(spec.source, wd, spec.sample_rate)
        _write_json(wd / "work" / "ingest.json", {"duration": duration})
        marks.mark("ingest", k_ingest)
    duration = _read_json(wd / "work" / "ingest.json")["duration"]
    reporter.stage(None, "ingest", 1.0)
    reporter.stage_done(None, "ingest", ["work/source.wav", "work/stt.wav"], reused)

    k_stt = _key(k_ingest, engines.stt.name, spec.source_language)
    reused = marks.done("transcribe", k_stt)
    if not reused:
        reporter.stage(None, "transcribe", 0.0)
        transcript = engines.stt.transcribe(wd / "work" / "stt.wav", spec.source_language,
                                            lambda f: reporter.stage(None, "transcribe", f))
        _write_json(wd / "transcript.json", transcript.to_dict())
        marks.mark("transcribe", k_stt)
    transcript = Transcript.from_dict(_read_json(wd / "transcript.json"))
    reporter.stage(None, "transcribe", 1.0)
    reporter.stage_done(None, "transcribe", ["transcript.json"], reused)
    if not transcript.segments:
        raise NoSpeech("No speech was found in the source.",
                       hint="Check that the file has spoken words and the source language is right.")
    src_lang = transcript.language
    captions.write_srt(wd / f"captions.{src_lang}.srt", [(s.start, s.end, s.text) for s in transcript.segments])

    languages: dict[str, Any] = {}
    for lang in spec.targets:
        try:
            languages[lang] = _language(spec, engines, reporter, marks, transcript, k_stt, duration, lang)
            reporter.language_done(lang, languages[lang])
        except DubError as err:
            reporter.language_failed(lang, err)
    data = {"job_id": spec.job_id, "source": {"duration": round(duration, 3), "sha256": source_sha,
                                              "language": src_lang, "filename": spec.source_name or spec.source.name},
            "captions": {src_lang: f"captions.{src_lang}.srt"}, "languages": languages}
    manifest.write(wd / "manifest.json", data)
    return data


def _language(spec: JobSpec, engines: Engines, reporter: Reporter, marks: _Markers, transcript: Transcript,
              k_stt: str, duration: float, lang: str) -> dict[str, Any]:
    wd, ld = spec.workdir, spec.workdir / lang
    segments = transcript.segments
    tr_path = ld / "translation.json"
    k_tr = _key(k_stt, engines.translator.name, lang)
    reused = marks.done(f"translate.{lang}", k_tr)
    if not reused:
        reporter.stage(lang, "translate", 0.0)
        _write_json(tr_path, translate.run(engines.translator, segments, transcript.language, lang, duration))
        marks.mark(f"translate.{lang}", k_tr)
    translations: dict[str, str] = _read_json(tr_path)
    reporter.stage(lang, "translate", 1.0)
    reporter.stage_done(lang, "translate", [f"{lang}/translation.json"], reused)

    voice = spec.voices.get(lang)
    k_out = _key(k_tr, sha256_file(tr_path), engines.tts.name, voice, spec.sample_rate, spec.duck_db,
                 spec.duck_ramp_ms, spec.max_stretch, spec.loudness_target)
    result = ld / "result.json"
    if marks.done(f"deliver.{lang}", k_out) and result.exists():
        reporter.stage_done(lang, "deliver", [f"{lang}/result.json"], True)
        return dict(_read_json(result))

    clips = synthesize.run(engines.tts, {s.id: translations.get(s.id, "") for s in segments}, lang,
                           ld / "clips", spec.sample_rate, voice, lambda f: reporter.stage(lang, "synthesize", f))
    reporter.stage_done(lang, "synthesize", [f"{lang}/clips/{p.name}" for p in clips.values()], False)
    reporter.stage(lang, "fit", 0.0)
    decisions, placements = fit.run(segments, clips, duration, spec.sample_rate, wd / "work" / "source.wav",
                                    ld / "fitted", spec.max_stretch)
    reporter.stage_done(lang, "fit", [f"{lang}/fitted/{p.clip.name}" for p in placements], False)
    reporter.stage(lang, "mix", 0.0)
    master, voice_wav = ld / "dub.wav", ld / "voice.wav"
    mix.run(wd / "work" / "source.wav", placements, master, voice_wav, spec.duck_db, spec.duck_ramp_ms)
    level = normalize(master, spec.loudness_target)
    reporter.stage_done(lang, "mix", [f"{lang}/dub.wav", f"{lang}/voice.wav"], False)
    reporter.stage(lang, "captions", 0.0)
    srt_path = ld / "captions.srt"
    by_id = {d.segment_id: d for d in decisions}
    captions.write_srt(srt_path, _caption_items(segments, translations, by_id))
    reporter.stage_done(lang, "captions", [f"{lang}/captions.srt"], False)
    reporter.stage(lang, "deliver", 0.0)
    m4a = ld / "dub.m4a"
    media.encode_aac(master, m4a)
    arts = [manifest.artifact(kind, p, wd) for kind, p in
            [("audio_wav", master), ("audio", m4a), ("voice_wav", voice_wav), ("captions_srt", srt_path)]]
    entry = manifest.language_entry(segments, translations, decisions, level, arts)
    _write_json(result, entry)
    marks.mark(f"deliver.{lang}", k_out)
    reporter.stage(lang, "deliver", 1.0)
    reporter.stage_done(lang, "deliver", [f"{lang}/dub.m4a", f"{lang}/result.json"], False)
    return entry


def _caption_items(segments: list[Segment], translations: dict[str, str],
                   by_id: dict[str, FitDecision]) -> list[tuple[float, float, str]]:
    items = []
    for s in segments:
        d = by_id[s.id]
        if translations.get(s.id) and d.dub_end > d.dub_start:
            items.append((d.dub_start, d.dub_end, translations[s.id]))
    return items


DELIVERABLE_GLOBS = ("manifest.json", "captions.*.srt", "*/dub.wav", "*/dub.m4a", "*/voice.wav", "*/captions.srt")


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
