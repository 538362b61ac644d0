"""ingest: check the input and decode it to the working WAVs (one ffmpeg pass for both rates)."""

from __future__ import annotations

from pathlib import Path

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


def run(source: Path, workdir: Path, sample_rate: int) -> float:
    """Decode to work/source.wav (mixing rate) and work/stt.wav (16 kHz); return the exact duration."""
    work = workdir / "work"
    work.mkdir(parents=True, exist_ok=True)
    main, stt = work / "source.wav", work / "stt.wav"
    tmp_main, tmp_stt = work / "source.part.wav", work / "stt.part.wav"
    media.decode(source, [(tmp_main, sample_rate), (tmp_stt, STT_RATE)])
    frames = sf.info(tmp_main).frames
    if frames == 0:
        raise NotMedia(f"{source.name} has an audio stream with no samples.", hint="Check the file plays.")
    tmp_main.replace(main)
    tmp_stt.replace(stt)
    return frames / sample_rate
