"""ingest: check the input and decode it to the working WAVs (one ffmpeg pass for both rates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soundfile as sf

from ..errors import BadInput, EmptyFile, NotMedia
from . import media

STT_RATE = 16000


def check_input(path: Path, max_duration: float, name: str = "") -> media.MediaInfo:
    """Refuse what cannot be dubbed before any work or cost: empty, not media, no audio, too long.
    `name` is the file's name as the user knows it, for the messages."""
    name = name or path.name
    if not path.exists() or path.stat().st_size == 0:
        raise EmptyFile(f"The file {name} is empty.", hint="Choose a file that holds audio or video.")
    info = media.probe(path)
    if not info.has_audio:
        what = "a video without an audio stream" if info.has_video else "not an audio or video file"
        raise NotMedia(f"{name} is {what}.",
                       hint="Use a common audio or video file (mp4, mov, mkv, webm, mp3, wav, m4a, flac, ogg).")
    if info.duration is not None and info.duration > max_duration:
        raise BadInput(f"{name} lasts {info.duration:.0f} s, over the limit of {max_duration:.0f} s.",
                       hint="Cut the file, or raise DUBSTUDIO_MAX_DURATION.", details={"duration": info.duration})
    return info


def run(source: Path, workdir: Path, sample_rate: int, background: Path | None = None) -> dict[str, Any]:
    """Decode to work/source.wav (mixing rate) and work/stt.wav (16 kHz), and a background track to
    work/background.wav; returns what the manifest says of the inputs."""
    work = workdir / "work"
    work.mkdir(parents=True, exist_ok=True)
    info = media.probe(source)
    tmp_main, tmp_stt = work / "source.part.wav", work / "stt.part.wav"
    media.decode(source, [(tmp_main, sample_rate), (tmp_stt, STT_RATE)])
    frames = sf.info(tmp_main).frames
    if frames == 0:
        raise NotMedia(f"{source.name} has an audio stream with no samples.", hint="Check the file plays.")
    tmp_main.replace(work / "source.wav")
    tmp_stt.replace(work / "stt.wav")
    out: dict[str, Any] = {"duration": frames / sample_rate, "has_video": info.has_video,
                           "sample_rate": info.sample_rate, "channels": info.channels}
    if background is not None:
        bg = media.probe(background)
        if not bg.has_audio:
            raise NotMedia(f"The background {background.name} has no audio stream.",
                           hint="Give an audio file (or a video with sound) as the background track.")
        tmp_bg = work / "background.part.wav"
        media.decode(background, [(tmp_bg, sample_rate)])
        bg_frames = sf.info(tmp_bg).frames
        tmp_bg.replace(work / "background.wav")
        # The mix follows the voice track: a shorter background is padded with silence, a longer one cut.
        out["background"] = {"sample_rate": bg.sample_rate, "resampled": bg.sample_rate != sample_rate,
                             "padded_seconds": round(max(0, frames - bg_frames) / sample_rate, 3),
                             "trimmed_seconds": round(max(0, bg_frames - frames) / sample_rate, 3)}
    return out
