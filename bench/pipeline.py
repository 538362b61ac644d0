"""Local processing speed of a long job against instant fake engines, as a ratio to the floor.

    .venv/bin/python bench/pipeline.py [--minutes 60] [--languages es,fr]

The floor, measured in the same run: the bundled ffmpeg decoding the same input, mixing it with a dub
track and encoding the same deliverables (per language a 24-bit WAV master and an AAC file) in one
command. Also printed: the realtime factor (media seconds per second of processing) and the number of
segments. Goal (issue 3): at most 1.3x the floor.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import dub_env, fakes, ffmpeg_exe, long_input, measured, workdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--languages", default="es,fr")
    args = ap.parse_args()
    langs = args.languages.split(",")
    tmp = workdir()
    source = long_input(args.minutes, tmp / "input.wav")
    out = tmp / "out"
    with fakes() as urls:
        job_s, rss = measured([sys.executable, "-m", "dubstudio", "dub", str(source), "--to", args.languages,
                               "--out", str(out)], env=dub_env(urls, tmp / "data"))
    manifest = json.loads((out / "manifest.json").read_text())
    segments = len(manifest["languages"][langs[0]]["segments"])

    # The floor: one ffmpeg command, the same input and the dub tracks in, the same deliverables out.
    cmd = [ffmpeg_exe(), "-y", "-v", "error", "-i", str(source)]
    for lang in langs:
        cmd += ["-i", str(out / lang / "voice.wav")]
    split = f"[0:a]aresample=48000,asplit={len(langs)}" + "".join(f"[s{n}]" for n in range(len(langs)))
    graph = [split]
    for n in range(len(langs)):
        graph.append(f"[s{n}][{n + 1}:a]amix=inputs=2:normalize=0,asplit=2[w{n}][m{n}]")
    cmd += ["-filter_complex", ";".join(graph)]
    for n, lang in enumerate(langs):
        cmd += ["-map", f"[w{n}]", "-c:a", "pcm_s24le", str(tmp / f"floor.{lang}.wav"),
                "-map", f"[m{n}]", "-c:a", "aac", "-b:a", "192k", str(tmp / f"floor.{lang}.m4a")]
    floor_s, _ = measured(cmd)

    media_s = manifest["source"]["duration"]
    print(f"input: {media_s / 60:.1f} min, {segments} segments, {len(langs)} languages")
    print(f"dubstudio dub: {job_s:.1f} s, peak RSS {rss:.0f} MB")
    print(f"ffmpeg floor:  {floor_s:.1f} s")
    print(f"ratio to the floor: {job_s / floor_s:.2f}x (goal <= 1.3x)")
    print(f"realtime factor: {media_s / job_s:.1f}x (media seconds per second of processing)")


if __name__ == "__main__":
    main()
