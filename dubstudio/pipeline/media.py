"""The only caller of ffmpeg (the binary bundled by imageio-ffmpeg; there is no ffprobe).

Every call is one process over the whole file, never one per segment: ffmpeg streams, so memory stays
flat whatever the length. The one exception, `master_pcm`, masters the few seconds around an edited line.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import DubError, NotMedia


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None
    has_audio: bool
    has_video: bool
    sample_rate: int | None
    channels: int | None


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO = re.compile(r"Stream #\S+.*?: Audio: [^,]+, (\d+) Hz, ([^,]+)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (?!png|mjpeg|bmp)")  # cover art is not video


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise NotMedia(f"ffmpeg could not {what}: {' / '.join(tail) or 'unknown error'}.",
                       hint="Check that the file is a complete, playable audio or video file.")
    return proc


def probe(path: Path) -> MediaInfo:
    """Streams and duration from `ffmpeg -i`'s header dump (exit code 1 is expected there)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True)
    err = proc.stderr.decode(errors="replace")
    m = _DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    a = _AUDIO.search(err)
    channels = None
    if a:
        layout = a[2].strip()
        channels = {"mono": 1, "stereo": 2}.get(layout) or (int(layout.split()[0]) if layout[:1].isdigit() else 2)
    return MediaInfo(duration=duration, has_audio=a is not None, has_video=_VIDEO.search(err) is not None,
                     sample_rate=int(a[1]) if a else None, channels=channels)


def decode(src: Path, outputs: list[tuple[Path, int]]) -> None:
    """Decode the first audio stream of `src` to mono 16-bit WAVs, one per (path, sample_rate), in one pass."""
    args = ["-y", "-loglevel", "error", "-i", str(src)]
    for dst, rate in outputs:
        args += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(rate), "-c:a", "pcm_s16le",
                 "-bitexact", "-f", "wav", str(dst)]
    _run(args, f"decode {src.name}")


def loudness(wav: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) by ffmpeg's BS.1770 meter, streamed."""
    proc = _run(["-loglevel", "info", "-i", str(wav), "-af", "ebur128=peak=true:framelog=quiet",
                 "-f", "null", "-"], f"measure {wav.name}")
    return _summary(proc.stderr.decode(errors="replace"))


BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]  # no dates or versions


def _summary(stderr: str) -> tuple[float, float]:
    summary = stderr[stderr.rfind("Summary:"):]
    i = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    p = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    return (float(i[1]) if i and i[1] != "-inf" else float("-inf"),
            float(p[1]) if p and p[1] != "-inf" else float("-inf"))


LIMITER_ATTACK_MS, LIMITER_RELEASE_MS = 5.0, 60.0  # how far ahead the limiter looks, how long it takes to let go


def limit_value(limit_db: float) -> float:
    """The limiter's threshold as ffmpeg reads it (linear, as written in the filter graph)."""
    return float(f"{10 ** (limit_db / 20):.5f}")


def _gain_and_limiter(gain_db: float, limit_db: float) -> str:
    return (f"volume={gain_db:.3f}dB,alimiter=limit={limit_value(limit_db):.5f}:attack={LIMITER_ATTACK_MS:g}:"
            f"release={LIMITER_RELEASE_MS:g}:level=0:latency=1")


def master(mix: Path, gain_db: float, limit_db: float, wav: Path, m4a: Path,
           bitrate: str = "192k") -> tuple[float, float]:
    """One pass over the mix: gain, a look-ahead peak limiter, the 24-bit WAV master and the AAC file,
    and a BS.1770 measurement of what was written. Returns (integrated LUFS, true peak dBTP)."""
    graph = (f"[0:a]{_gain_and_limiter(gain_db, limit_db)},asplit=3[w][m][e];"
             "[e]ebur128=peak=true:framelog=quiet[eo]")
    proc = _run(["-y", "-loglevel", "info", "-i", str(mix), "-filter_complex", graph,
                 "-map", "[w]", "-c:a", "pcm_s24le", *BITEXACT, str(wav),
                 "-map", "[m]", "-c:a", "aac", "-b:a", bitrate, *BITEXACT, "-movflags", "+faststart", str(m4a),
                 "-map", "[eo]", "-f", "null", "-"], f"master {wav.name}")
    return _summary(proc.stderr.decode(errors="replace"))


def master_pcm(mix: np.ndarray, sample_rate: int, gain_db: float, limit_db: float) -> bytes:
    """`master`'s gain and limiter over mono float samples, the limiter starting at rest: the 24-bit
    little-endian PCM that `master` writes into the WAV for the same samples (same filters, formats
    and conversions), one small process for a stretch of a few seconds."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                           "-f", "f32le", "-ar", str(sample_rate), "-ch_layout", "mono", "-i", "pipe:0",
                           "-filter_complex", f"[0:a]{_gain_and_limiter(gain_db, limit_db)}[w]", "-map", "[w]",
                           "-c:a", "pcm_s24le", "-f", "s24le", "pipe:1"],
                          input=np.ascontiguousarray(mix, dtype="<f4").tobytes(), capture_output=True)
    if proc.returncode != 0 or len(proc.stdout) != 3 * mix.size:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise DubError(f"ffmpeg could not master a stretch of the mix: {' / '.join(tail) or 'short output'}.")
    return proc.stdout


def video_container(source: Path) -> str:
    """The container for a dubbed video: the source's where it can hold AAC, else Matroska."""
    suffix = source.suffix.lower()
    return suffix if suffix in (".mp4", ".mov", ".mkv", ".m4v") else ".mkv"


def mux(video: Path, tracks: list[tuple[Path, str, str]], dst: Path, keep_original: bool = False) -> None:
    """`video`'s picture (copied, never re-encoded) with audio tracks (path, ISO 639-2 language, title),
    copied too; `keep_original` puts the source's own audio first."""
    args = ["-y", "-loglevel", "error", "-i", str(video)]
    for path, _, _ in tracks:
        args += ["-i", str(path)]
    args += ["-map", "0:v:0"]
    if keep_original:
        args += ["-map", "0:a:0"]
    for n in range(len(tracks)):
        args += ["-map", f"{n + 1}:a:0"]
    args += ["-c", "copy", *BITEXACT, "-flags:v", "+bitexact"]
    offset = 1 if keep_original else 0
    for n, (_, lang, title) in enumerate(tracks):
        args += [f"-metadata:s:a:{n + offset}", f"language={lang}", f"-metadata:s:a:{n + offset}", f"title={title}"]
    args += [f"-disposition:a:{offset}", "default"] if tracks else []
    if dst.suffix in (".mp4", ".mov", ".m4v"):
        args += ["-movflags", "+faststart"]
    tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
    _run([*args, str(tmp)], f"write {dst.name}")
    tmp.replace(dst)
