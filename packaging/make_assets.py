"""Make the files in assets/: the icon (PNG and ICO, drawn here without any imaging library) and the
3 s sample clip (cut from the JFK test recording with the ffmpeg that imageio-ffmpeg bundles).

    .venv/bin/python packaging/make_assets.py [--media DIR]

The outputs are committed; run this again only to change them.
"""

from __future__ import annotations

import argparse
import math
import struct
import subprocess
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
SAMPLE_START, SAMPLE_SECONDS = 0.0, 3.0

BACKGROUND = (0x4F, 0x46, 0xE5)  # indigo
FOREGROUND = (0xFF, 0xFF, 0xFF)
BARS = (0.30, 0.55, 0.85, 0.60, 0.95, 0.50, 0.70, 0.35)  # a waveform's bar heights, 0..1


def _coverage_rounded_square(x: float, y: float, size: float, radius: float) -> float:
    """1 inside a square with rounded corners, 0 outside (x, y: pixel centre)."""
    cx = min(max(x, radius), size - radius)
    cy = min(max(y, radius), size - radius)
    d = math.hypot(x - cx, y - cy)
    return max(0.0, min(1.0, radius - d + 0.5))


def draw(size: int) -> bytes:
    """RGBA pixels: a rounded indigo square with white waveform bars, anti-aliased by 4x4 sampling."""
    n = len(BARS)
    margin, gap = size * 0.18, size * 0.035
    bar_w = (size - 2 * margin - gap * (n - 1)) / n
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # PNG filter: none
        for px in range(size):
            bg = fg = 0.0
            for sy in range(4):
                for sx in range(4):
                    x, y = px + (sx + 0.5) / 4, py + (sy + 0.5) / 4
                    inside = _coverage_rounded_square(x, y, size, size * 0.2) > 0.5
                    if not inside:
                        continue
                    bg += 1
                    i = int((x - margin) // (bar_w + gap))
                    if 0 <= i < n and x - margin - i * (bar_w + gap) <= bar_w:
                        half = BARS[i] * (size - 2 * margin) / 2
                        if abs(y - size / 2) <= half:
                            fg += 1
            alpha, mix = bg / 16, (fg / bg if bg else 0.0)
            rgb = [round(b + (f - b) * mix) for b, f in zip(BACKGROUND, FOREGROUND, strict=True)]
            rows += bytes([*rgb, round(alpha * 255)])
    return bytes(rows)


def png(size: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(draw(size), 9))
            + chunk(b"IEND", b""))


def ico(sizes: tuple[int, ...]) -> bytes:
    """A Windows icon whose images are PNGs (supported since Windows Vista)."""
    images = [png(s) for s in sizes]
    out = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    for s, data in zip(sizes, images, strict=True):
        out += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return out + b"".join(images)


def sample(media: Path) -> None:
    import imageio_ffmpeg

    src = media / "jfk-11s.flac"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-ss", str(SAMPLE_START),
                    "-t", str(SAMPLE_SECONDS), "-i", str(src), "-ac", "1", "-sample_fmt", "s16",
                    "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
                    str(ASSETS / "sample-jfk-3s.flac")], check=True, capture_output=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    args = p.parse_args()
    ASSETS.mkdir(exist_ok=True)
    (ASSETS / "dubstudio.png").write_bytes(png(256))
    (ASSETS / "dubstudio.ico").write_bytes(ico((256, 48, 32, 16)))
    sample(args.media)
    for f in sorted(ASSETS.iterdir()):
        print(f"{f.stat().st_size:>8}  {f.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
