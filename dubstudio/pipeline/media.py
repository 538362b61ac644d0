"""The only caller of ffmpeg (the binary bundled by imageio-ffmpeg; there is no ffprobe).

Every call is one process over the whole file, never one per segment: ffmpeg streams, so memory stays
flat whatever the length.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import NotMedia


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


def encode_aac(wav: Path, dst: Path, bitrate: str = "192k") -> None:
    """AAC in an .m4a; -bitexact and no metadata keep two runs byte-identical."""
    _run(["-y", "-loglevel", "error", "-i", str(wav), "-map_metadata", "-1", "-c:a", "aac", "-b:a", bitrate,
          "-fflags", "+bitexact", "-flags:a", "+bitexact", "-movflags", "+faststart", str(dst)],
         f"encode {dst.name}")


def loudness(wav: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) by ffmpeg's BS.1770 meter, streamed."""
    proc = _run(["-loglevel", "info", "-i", str(wav), "-af", "ebur128=peak=true:framelog=quiet",
                 "-f", "null", "-"], f"measure {wav.name}")
    err = proc.stderr.decode(errors="replace")
    summary = err[err.rfind("Summary:"):]
    i = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    p = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    to_f = lambda m: float(m[1]) if m and m[1] != "-inf" else float("-inf")  # noqa: E731
    return to_f(i), to_f(p)
