"""Loudness: measured by ffmpeg's BS.1770 meter (streamed), corrected by one gain pass in blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from . import media
from .audio import BLOCK_SECONDS

PEAK_CEILING = -1.0  # dBTP


def normalize(path: Path, target_lufs: float) -> dict[str, float]:
    """Bring `path` toward `target_lufs` without letting the true peak pass PEAK_CEILING; return the
    figures measured on the result."""
    integrated, peak = media.loudness(path)
    if np.isfinite(integrated):
        gain = min(target_lufs - integrated, PEAK_CEILING - peak if np.isfinite(peak) else 0.0)
        if abs(gain) > 0.05:
            factor = 10 ** (gain / 20)
            info = sf.info(path)
            tmp = path.with_name(path.name + ".part")
            with sf.SoundFile(tmp, "w", info.samplerate, info.channels, info.subtype, format="WAV") as out:
                for block in sf.blocks(path, blocksize=int(BLOCK_SECONDS * info.samplerate), dtype="float32"):
                    out.write(np.clip(block * factor, -1.0, 1.0))
            tmp.replace(path)
            integrated, peak = media.loudness(path)
    return {"integrated_lufs": round(integrated, 1) if np.isfinite(integrated) else None,  # type: ignore[dict-item]
            "true_peak_dbtp": round(peak, 1) if np.isfinite(peak) else None}  # type: ignore[dict-item]
