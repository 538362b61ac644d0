"""manifest.json: what was made, from what, and every fit decision (PRODUCT.md's interface)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..domain import FitDecision, Segment
from .layout import sha256_file


def artifact(kind: str, path: Path, root: Path) -> dict[str, Any]:
    return {"kind": kind, "path": path.relative_to(root).as_posix(), "sha256": sha256_file(path),
            "bytes": path.stat().st_size}


def language_entry(segments: list[Segment], spoken: dict[str, str], decisions: list[FitDecision],
                   loudness: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {d.segment_id: d for d in decisions}
    rows = []
    for seg in segments:
        d = by_id[seg.id]
        rows.append({"id": seg.id, "speaker": seg.speaker, "source_start": round(seg.start, 3),
                     "source_end": round(seg.end, 3), "dub_start": d.dub_start, "dub_end": d.dub_end,
                     "stretch": d.stretch, "overflow": d.overflow, "borrowed": d.borrowed, "rate": d.rate,
                     "attempts": d.attempts, "voice": d.voice, "text": seg.text,
                     "translation": spoken.get(seg.id, "")})
    return {"segments": rows, "loudness": loudness, "artifacts": artifacts}


def write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
