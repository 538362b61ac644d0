"""Loudness: the mix measured by ffmpeg's BS.1770 meter (streamed), then mastered in one pass to the
target (gain plus a look-ahead limiter), and the result measured again for the manifest."""

from __future__ import annotations

import math
from pathlib import Path

from . import media

PEAK_CEILING = -1.0  # dBTP, PRODUCT.md
SAMPLE_LIMIT = -2.0  # the limiter works on samples; 1 dB below the ceiling leaves room for inter-sample peaks
TOLERANCE = 0.3  # LU; the product allows 1


def finish(mix: Path, target: float, wav: Path, m4a: Path) -> tuple[dict[str, float | None], dict[str, float]]:
    """Write the WAV master and the AAC file from `mix` at `target` LUFS, true peak under the ceiling.
    Returns the levels for the manifest, and the gain and limit used (an edited line's preview is
    mastered with them). Both files appear at once when done: a reader never sees half a master."""
    integrated, _ = media.loudness(mix)
    gain = target - integrated if math.isfinite(integrated) else 0.0
    limit = SAMPLE_LIMIT
    tmp_wav, tmp_m4a = wav.with_name(wav.stem + ".part" + wav.suffix), m4a.with_name(m4a.stem + ".part" + m4a.suffix)
    for _ in range(3):  # a second pass only when the limiter took loudness away or a peak slipped through
        used = {"gain_db": gain, "limit_db": limit}
        integrated, peak = media.master(mix, gain, limit, tmp_wav, tmp_m4a)
        if not math.isfinite(integrated):
            break
        over = peak - PEAK_CEILING if math.isfinite(peak) else 0.0
        if over <= 0 and abs(integrated - target) <= TOLERANCE:
            break
        if over > 0:
            limit -= over + 0.2
        gain += target - integrated
    tmp_wav.replace(wav)
    tmp_m4a.replace(m4a)
    return ({"integrated_lufs": round(integrated, 1) if math.isfinite(integrated) else None,
             "true_peak_dbtp": round(peak, 1) if math.isfinite(peak) else None,
             "target_lufs": target}, used)
