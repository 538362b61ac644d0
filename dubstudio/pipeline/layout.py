"""The layout of a job's folder that the server reads without running the pipeline: stage names and
progress, the files a person's edits live in, JSON and hashes. Light on purpose (no numpy, no audio
libraries): the API and the UI import it; only the job's process loads the pipeline itself."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..domain import Transcript

# Share of a language's progress each stage stands for; ingest and transcribe are shared by all languages.
WEIGHTS = {"ingest": 0.05, "transcribe": 0.25, "translate": 0.10, "synthesize": 0.30, "fit": 0.05,
           "mix": 0.10, "captions": 0.02, "deliver": 0.13}
STAGES = list(WEIGHTS)
EDITS = "edits.json"  # in a language's folder: {segment id: translation} typed by a person
SOURCE_EDITS = "source_edits.json"  # in the job's folder: {segment id: source text} corrected by a person
SPEAKER_EDITS = "speaker_edits.json"  # in the job's folder: {segment id: speaker} set by a person
MASTER = "master.json"  # in a language's folder: what its last full master was made from, and its gain and limit
PREVIEW = "preview.json"  # in a language's folder: a line patched into the master since (preview.py)


def overall(stage: str, fraction: float) -> float:
    """Progress 0..1 of a language when `stage` is `fraction` done."""
    before = sum(WEIGHTS[s] for s in STAGES[: STAGES.index(stage)])
    return round(min(1.0, before + WEIGHTS[stage] * max(0.0, min(1.0, fraction))), 4)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def apply_speaker_edits(transcript: Transcript, workdir: Path) -> dict[str, str]:
    """Lines a person gave to another speaker (so to another voice); the edits, for stage keys."""
    path = workdir / SPEAKER_EDITS
    speakers: dict[str, str] = read_json(path) if path.exists() else {}
    for seg in transcript.segments:
        seg.speaker = speakers.get(seg.id, seg.speaker)
    return speakers


def editor_files(job_id: str, languages: Iterable[str]) -> tuple[list[str], list[str]]:
    """The storage keys of what a run writes and the editor reads (the lines and where they went), and
    of what a person writes and a run reads (the edits): small JSON files, shared through the store."""
    base, langs = f"jobs/{job_id}", list(languages)
    made = [f"{base}/transcript.json", *(f"{base}/{lang}/{name}" for lang in langs
                                        for name in ("translation.json", "result.json"))]
    edits = [f"{base}/{SOURCE_EDITS}", f"{base}/{SPEAKER_EDITS}", *(f"{base}/{lang}/{EDITS}" for lang in langs)]
    return made, edits


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
