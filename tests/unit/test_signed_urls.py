"""App-served signed URLs, uploads streamed to disk, media sniffed from content, and upload names that
cannot escape the store."""

from __future__ import annotations

import hashlib
import random
import subprocess
import threading
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from dubstudio.errors import AuthError, BadInput, EmptyFile
from dubstudio.pipeline.media import ffmpeg_exe
from dubstudio.storage.base import safe_key
from dubstudio.storage.local import LocalStorage
from dubstudio.storage.signed import (
    MEDIA_TYPES,
    MemoryNonces,
    Signer,
    display_name,
    sniff,
    stream_to_file,
    upload_key,
    write_chunks,
)

SECRET = b"k" * 32
PATH = "/api/v1/files/uploads/0f3a/voice"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(clock: Clock) -> Signer:
    return Signer(SECRET, clock=clock)


# -- signed URLs -------------------------------------------------------------------------------------------

def test_a_signature_verifies_for_exactly_what_was_signed(signer: Signer, clock: Clock) -> None:
    exp, nonce = int(clock.now) + 300, "n" * 24
    sig = signer.sign("PUT", PATH, exp, nonce)
    assert len(sig) == 43 and sig.replace("-", "").replace("_", "").isalnum()  # URL-safe, no padding
    signer.verify("PUT", PATH, exp, nonce, sig)
    signer.verify("put", PATH, str(exp), nonce, sig)  # method case and a query-string expiry are fine
    tampered = {
        "method": ("GET", PATH, exp, nonce, sig),
        "path": ("PUT", PATH + "x", exp, nonce, sig),
        "other file": ("PUT", "/api/v1/files/uploads/0f3a/background", exp, nonce, sig),
        "traversal": ("PUT", PATH + "/../../secret", exp, nonce, sig),
        "expiry pushed": ("PUT", PATH, exp + 3600, nonce, sig),
        "expiry garbage": ("PUT", PATH, "soon", nonce, sig),
        "nonce": ("PUT", PATH, exp, "m" * 24, sig),
        "signature flipped": ("PUT", PATH, exp, nonce, ("A" if sig[0] != "A" else "B") + sig[1:]),
        "signature truncated": ("PUT", PATH, exp, nonce, sig[:-1]),
        "signature empty": ("PUT", PATH, exp, nonce, ""),
        "signature non-ascii": ("PUT", PATH, exp, nonce, sig[:-1] + "é"),
    }
    for what, args in tampered.items():
        with pytest.raises(AuthError, match="not valid"):
            signer.verify(*args)  # type: ignore[arg-type]
        assert what
    with pytest.raises(AuthError, match="not valid"):
        Signer(b"x" * 32, clock=clock).verify("PUT", PATH, exp, nonce, sig)  # another server's secret


def test_expired_urls_are_refused(signer: Signer, clock: Clock) -> None:
    exp, nonce = int(clock.now) + 60, "n" * 24
    sig = signer.sign("GET", PATH, exp, nonce)
    clock.now += 60
    signer.verify("GET", PATH, exp, nonce, sig)  # valid up to and including its expiry second
    clock.now += 1
    with pytest.raises(AuthError, match="expired"):
        signer.verify("GET", PATH, exp, nonce, sig)


def test_single_use_through_the_nonce(signer: Signer) -> None:
    nonces = MemoryNonces()
    url = signer.signed_url("GET", PATH, 300)
    query = dict(parse_qsl(urlsplit(url.url).query))
    assert urlsplit(url.url).path == PATH and set(query) == {"expires", "nonce", "signature"}
    # a forged signature does not spend the nonce
    with pytest.raises(AuthError, match="not valid"):
        signer.verify_query("GET", PATH, {**query, "signature": "A" * 43}, nonces.used)
    assert signer.verify_query("GET", PATH, query, nonces.used) == url.expires_at
    with pytest.raises(AuthError, match="already used"):
        signer.verify_query("GET", PATH, query, nonces.used)
    other = signer.signed_url("GET", PATH, 300)
    assert other.nonce != url.nonce
    signer.verify_query("GET", PATH, dict(parse_qsl(urlsplit(other.url).query)), nonces.used)
    for missing in ("expires", "nonce", "signature"):
        with pytest.raises(AuthError, match="not valid"):
            signer.verify_query("GET", PATH, {k: v for k, v in query.items() if k != missing})


def test_memory_nonces_are_atomic_and_forget_expired_ones(clock: Clock) -> None:
    nonces = MemoryNonces(clock=clock)
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def spend() -> None:
        barrier.wait()
        results.append(nonces.used("race-nonce-0000000", int(clock.now) + 10))

    threads = [threading.Thread(target=spend) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 15
    for i in range(1100):
        nonces.used(f"old-nonce-{i:08d}", int(clock.now) + 10)
    clock.now += 11
    nonces.used("fresh-nonce-000000", int(clock.now) + 10)
    assert len(nonces._seen) < 10  # the expired ones were dropped


def test_signer_refuses_weak_secrets_and_odd_input(signer: Signer) -> None:
    with pytest.raises(ValueError):
        Signer(b"short")
    for method, path, nonce in (("GET", "no-slash", "n" * 24), ("GET", "/a\nb", "n" * 24),
                                ("GET", "/a?b=c", "n" * 24), ("G T", "/a", "n" * 24), ("GET", "/a", "short"),
                                ("GET", "/a", "bad nonce with spaces!")):
        with pytest.raises(ValueError):
            signer.sign(method, path, 1, nonce)


# -- streaming uploads to disk -----------------------------------------------------------------------------

async def agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_stream_to_file_writes_and_hashes(tmp_path: Path) -> None:
    chunks = [b"a" * 1000, b"b" * 24, b"c"]
    dst = tmp_path / "up" / "voice.wav"
    done = await stream_to_file(agen(chunks), dst, 1025)
    assert dst.read_bytes() == b"".join(chunks) and done.bytes == 1025
    assert done.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert leftovers(dst.parent) == ["voice.wav"]
    again = await stream_to_file(iter([b"xyz"]), dst, 10, expected_sha256=hashlib.sha256(b"xyz").hexdigest().upper())
    assert dst.read_bytes() == b"xyz" and again.bytes == 3


async def test_stream_to_file_refuses_oversize_and_leaves_nothing(tmp_path: Path) -> None:
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for i in range(10_000):
            pulled.append(i)
            yield b"z" * 1024

    dst = tmp_path / "up" / "voice.wav"
    with pytest.raises(BadInput, match="larger than the limit of 10 KB") as info:
        await stream_to_file(endless(), dst, 10 * 1024)
    assert info.value.details == {"max_bytes": 10240}
    assert len(pulled) == 11  # stopped at the first chunk over the limit, not at the end
    assert leftovers(dst.parent) == []
    dst.write_bytes(b"older")  # a refused upload leaves an older file as it was
    with pytest.raises(BadInput, match=r"1\.5 MB"):
        await stream_to_file(agen([b"q" * 1024] * 2000), dst, 1536 * 1024)
    assert dst.read_bytes() == b"older" and leftovers(dst.parent) == ["voice.wav"]


async def test_stream_to_file_refuses_empty_bad_checksum_and_broken_streams(tmp_path: Path) -> None:
    dst = tmp_path / "x.bin"
    with pytest.raises(EmptyFile):
        await stream_to_file(agen([]), dst, 100)
    assert (await stream_to_file(agen([]), dst, 100, allow_empty=True)).bytes == 0
    dst.unlink()
    with pytest.raises(BadInput, match="checksum"):
        await stream_to_file(agen([b"abc"]), dst, 100, expected_sha256="0" * 64)

    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await stream_to_file(broken(), dst, 100)
    with pytest.raises(BadInput):
        write_chunks(iter([b"x" * 60, b"x" * 60]), dst, 100)
    assert leftovers(tmp_path) == []


async def test_stream_to_file_memory_stays_flat(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        for i in range(48):
            yield bytes([i]) * (1 << 20)  # a fresh MiB each time

    tracemalloc.start()
    try:
        done = await stream_to_file(chunks(), tmp_path / "big.bin", 64 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done.bytes == 48 << 20
    assert peak < 6 << 20, peak  # 48 MiB went through; a few MiB at most were held


# -- sniffing media from content ---------------------------------------------------------------------------

OUTPUTS = {  # file name: (ffmpeg output options, expected type)
    "a.wav": (["-map", "0:a", "-c:a", "pcm_s16le"], "audio/wav"),
    "a.mp3": (["-map", "0:a", "-c:a", "libmp3lame"], "audio/mpeg"),
    "raw.mp3": (["-map", "0:a", "-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0"], "audio/mpeg"),
    "a.flac": (["-map", "0:a", "-c:a", "flac"], "audio/flac"),
    "a.ogg": (["-map", "0:a", "-c:a", "libvorbis"], "audio/ogg"),
    "a.opus": (["-map", "0:a", "-c:a", "libopus"], "audio/ogg"),
    "a.m4a": (["-map", "0:a", "-c:a", "aac"], "audio/mp4"),
    "a.aac": (["-map", "0:a", "-c:a", "aac", "-f", "adts"], "audio/aac"),
    "a.aiff": (["-map", "0:a", "-c:a", "pcm_s16be"], "audio/aiff"),
    "v.mp4": (["-map", "1:v", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"], "video/mp4"),
    "v.mov": (["-map", "1:v", "-map", "0:a", "-c:v", "mpeg4", "-c:a", "aac"], "video/quicktime"),
    "v.mkv": (["-map", "1:v", "-map", "0:a", "-c:v", "mpeg4", "-c:a", "flac"], "video/x-matroska"),
    "v.webm": (["-map", "1:v", "-map", "0:a", "-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"],
               "video/webm"),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every container made by the bundled ffmpeg in one run: a fraction of a second of tone and video."""
    folder = tmp_path_factory.mktemp("media")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=0.3:sample_rate=48000",
            "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=0.3"]
    for name, (options, _) in OUTPUTS.items():
        args += [*options, str(folder / name)]
    subprocess.run(args, check=True, capture_output=True)
    return folder


@pytest.mark.parametrize("name", OUTPUTS)
def test_sniff_recognises_real_media(media: Path, name: str, tmp_path: Path) -> None:
    expected = OUTPUTS[name][1]
    assert sniff(media / name) == expected and expected in MEDIA_TYPES
    misnamed = tmp_path / "upload.txt"  # the name plays no part
    misnamed.write_bytes((media / name).read_bytes())
    assert sniff(misnamed) == expected


NOT_MEDIA = {
    "text.mp4": b"hello, this is not a video at all\n" * 50,
    "id3-ish.mp3": b"ID3 tags are what mp3 files carry, but this is text\n",
    "page.webm": b"<!doctype html><html><body>nope</body></html>",
    "data.wav": b'{"RIFF": "WAVE"}',
    "image.mov": b"\x89PNG\r\n\x1a\n" + bytes(100),
    "archive.mkv": b"PK\x03\x04" + bytes(100),
    "tiny.flac": b"fL",
    "empty.ogg": b"",
    "noise.mp3": random.Random(7).randbytes(4096),
    "free-text.mov": b"abcdfree and then some text that is not a movie",
}


@pytest.mark.parametrize("name", NOT_MEDIA)
def test_sniff_refuses_what_is_not_media(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(NOT_MEDIA[name])
    assert sniff(path) is None


def test_sniff_names_images_in_media_containers(tmp_path: Path) -> None:
    heic = tmp_path / "photo.mp4"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    assert sniff(heic) == "image/heic" and sniff(heic) not in MEDIA_TYPES


# -- upload names ------------------------------------------------------------------------------------------

HOSTILE = {
    "parent": "../../etc/passwd",
    "absolute": "/etc/passwd",
    "windows": "..\\..\\Windows\\win.ini",
    "nul": "voice\0.wav",
    "long": "a" * 1000 + ".mp4",
    "unicode": "vidéo 日本語 \u202egnp.mp4",
    "drive": "C:evil.mp4",
    "newline": "a\r\nContent-Type: x.mp4",
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_upload_keys_never_use_the_file_name(name: str, tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    key = upload_key("0f3a9c", "source", HOSTILE[name])
    assert key in ("uploads/0f3a9c/source", "uploads/0f3a9c/source.mp4", "uploads/0f3a9c/source.wav")
    await store.write_stream(key, [b"bytes"])
    written = [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert written == [store.local_path(key)]
    assert written[0].resolve().is_relative_to((tmp_path / "root").resolve())
    shown = display_name(HOSTILE[name])
    assert "/" not in shown and "\\" not in shown and "\0" not in shown and "\n" not in shown
    assert 0 < len(shown) <= 255


def test_upload_key_refuses_odd_ids() -> None:
    for upload_id, kind in (("../x", "source"), ("a/b", "source"), ("ok", "../x"), ("", "source"), ("ok", "")):
        with pytest.raises(BadInput):
            upload_key(upload_id, kind, "x.mp4")


async def test_safe_key_keeps_names_under_the_root(tmp_path: Path) -> None:
    """What `storage.base.safe_key` does today with hostile names."""
    store = LocalStorage(tmp_path / "root")
    for name in (HOSTILE["parent"], HOSTILE["windows"], HOSTILE["nul"], "a/../../b", ".."):
        with pytest.raises(BadInput):
            safe_key("uploads", name)
    assert safe_key("uploads", HOSTILE["absolute"]) == "uploads/etc/passwd"  # the leading slash is dropped
    assert safe_key("uploads", "./a//b/.") == "uploads/a/b"
    unicode_key = safe_key("uploads", HOSTILE["unicode"])  # accepted as is (not normalised, not filtered)
    await store.write_stream(unicode_key, [b"x"])
    assert store.local_path(unicode_key).resolve().is_relative_to((tmp_path / "root").resolve())


async def test_safe_key_refuses_names_too_long_for_a_file_system(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    with pytest.raises(BadInput):
        await store.write_stream(safe_key("uploads", HOSTILE["long"]), [b"x"])


def test_safe_key_refuses_what_windows_reads_as_a_drive_or_stream() -> None:
    for name in (HOSTILE["drive"], "clip.wav:hidden-stream"):
        with pytest.raises(BadInput):
            safe_key("uploads", name)
