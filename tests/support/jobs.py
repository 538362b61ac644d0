"""Run a job the way `dubstudio dub` does (create it, run the queue's task in this process), and
measure what came out with tools independent of ours."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
from scipy.signal import resample_poly

from dubstudio import actions
from dubstudio.config import Settings
from dubstudio.db.models import Job
from dubstudio.pipeline.media import ffmpeg_exe
from dubstudio.runtime import Database, prepare
from dubstudio.tasks import Queue


@dataclass
class Done:
    job: Job
    workdir: Path


async def _create(settings: Settings, file: Path, targets: str, source: str, background: Path | None) -> str:
    storage = await asyncio.to_thread(prepare, settings)
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            bg = (background.name, [background.read_bytes()]) if background else None
            job = await actions.create_job(settings, s, storage, "local", file.name, [file.read_bytes()],
                                           source, targets, background=bg)
            return job.id
    finally:
        await db.close()


async def _get(settings: Settings, job_id: str) -> Job:
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            return await actions.get_job(s, "local", job_id)
    finally:
        await db.close()


def dub(file: Path, targets: str = "es", source: str = "en", background: Path | None = None,
        settings: Settings | None = None) -> Done:
    settings = settings or Settings()
    job_id = asyncio.run(_create(settings, file, targets, source, background))
    Queue(settings).run_job.call_local(job_id)
    return Done(asyncio.run(_get(settings, job_id)), settings.storage_dir / "jobs" / job_id)


def integrated_lufs(path: Path) -> float:
    """ITU-R BS.1770 by pyloudnorm, not by the ffmpeg meter the pipeline uses."""
    data, rate = sf.read(path)
    return float(pyloudnorm.Meter(rate).integrated_loudness(data))


def true_peak_dbtp(path: Path) -> float:
    """True peak by 4x oversampling (BS.1770-4 annex 2)."""
    data, _ = sf.read(path, always_2d=True)
    return float(20 * np.log10(np.max(np.abs(resample_poly(data, 4, 1, axis=0))) + 1e-12))


def streams(path: Path) -> str:
    """ffmpeg's description of a file's streams (there is no ffprobe in the bundle)."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def video_packets_sha(path: Path) -> str:
    """A hash of the video stream's packets as stored: equal for a copied stream, different if re-encoded."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "hash",
                          "-hash", "sha256", "-"], capture_output=True, text=True, check=True).stdout
    return out.strip()
