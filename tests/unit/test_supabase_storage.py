"""SupabaseStorage through supabase-py's storage client against the fake Supabase over real HTTP: the
direct-upload round trip, streamed fetches with checksums, prefix deletes, and errors mapped to ours."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from storage3.exceptions import StorageApiError

from dubstudio.errors import BadInput, NotFound, StorageError
from dubstudio.storage.base import Storage
from dubstudio.storage.signed import upload_key
from dubstudio.storage.supabase import UPLOAD_URL_LIFETIME, SupabaseStorage, storage_key
from tests.fakes.servers import free_port
from tests.fakes.supabase_server import BUCKET, SERVICE_KEY, FakeSupabase

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()
    with fake.running():
        yield fake


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the module: making one loads the CA certificates (a third of a second)."""
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        yield client


@pytest.fixture
def fake(server: FakeSupabase) -> FakeSupabase:
    server.reset()
    return server


@pytest.fixture
def storage(fake: FakeSupabase, tmp_path: Path, http: httpx.Client) -> SupabaseStorage:
    return SupabaseStorage(fake.url, SERVICE_KEY, BUCKET, tmp_path / "staging", http=http)


def test_direct_upload_round_trip(fake: FakeSupabase, storage: SupabaseStorage, http: httpx.Client) -> None:
    key = upload_key("0f3a9c", "voice", "My Voice (final).WAV")
    assert key == "uploads/0f3a9c/voice.wav"
    url, token, expires_at = storage.create_signed_upload_url(key)
    assert f"token={token}" in url and url.startswith(f"{fake.url}/storage/v1/object/upload/sign/{BUCKET}/")
    assert expires_at >= int(time.time()) + UPLOAD_URL_LIFETIME - 5
    assert not storage.exists(key)

    # the client (a browser: no service key) sends the raw bytes to the URL
    answer = http.put(url, content=WAV, headers={"Content-Type": "audio/wav"})
    assert answer.status_code == 200, answer.text
    assert fake.get(key) == WAV and storage.exists(key) and storage.size(key) == len(WAV)

    path = storage.fetch(key, sha256=hashlib.sha256(WAV).hexdigest())
    assert path == storage.local_path(key) and path.read_bytes() == WAV
    assert path.is_relative_to(storage.staging_dir)

    storage.delete_prefix("uploads/0f3a9c")
    assert not storage.exists(key) and fake.keys() == [] and not path.exists()
    with pytest.raises(NotFound):
        storage.fetch(key)


def test_signed_upload_through_supabase_py_multipart(fake: FakeSupabase, storage: SupabaseStorage) -> None:
    key = "uploads/77aa/background.flac"
    signed = storage.create_signed_upload_url(key)
    storage._files.upload_to_signed_url(key, signed.token, b"fLaC" + bytes(64), {"content-type": "audio/flac"})
    assert fake.get(key) == b"fLaC" + bytes(64)
    assert fake.upload_requests[-1]["content_type"].startswith("multipart/form-data")
    again = storage.create_signed_upload_url(key)  # a second upload to the same key is refused (no upsert)
    with pytest.raises(StorageApiError, match=r"Duplicate|already exists"):
        storage._files.upload_to_signed_url(key, again.token, b"other")
    assert fake.get(key) == b"fLaC" + bytes(64)


def test_fetch_checks_the_checksum_and_the_size(fake: FakeSupabase, storage: SupabaseStorage) -> None:
    fake.put("uploads/1/source.mp4", b"x" * 5000)
    with pytest.raises(BadInput, match="checksum"):
        storage.fetch("uploads/1/source.mp4", sha256="0" * 64)
    with pytest.raises(BadInput, match="limit"):
        storage.fetch("uploads/1/source.mp4", max_bytes=4000)
    assert not storage.local_path("uploads/1/source.mp4").exists()
    assert list(storage.staging_dir.rglob("*.part")) == []
    with storage.fetched("uploads/1/source.mp4") as path:
        assert path.read_bytes() == b"x" * 5000
    assert not path.exists()


def test_upload_download_url_and_write_stream(fake: FakeSupabase, storage: SupabaseStorage, tmp_path: Path,
                                              http: httpx.Client) -> None:
    src = tmp_path / "master.wav"
    src.write_bytes(WAV)
    storage.upload("jobs/j1/es/master.wav", src)
    storage.upload("jobs/j1/es/master.wav", src)  # replacing is fine
    assert fake.objects[(BUCKET, "jobs/j1/es/master.wav")].content_type == "audio/wav"  # sniffed, not guessed
    url = storage.signed_download_url("jobs/j1/es/master.wav", 60, download_as="talk (es).wav")
    got = http.get(url)
    assert got.status_code == 200 and got.content == WAV
    assert "attachment" in got.headers["content-disposition"]
    assert http.get(url.replace("token=", "token=x")).status_code == 400

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    store: Storage = storage
    assert asyncio.run(store.write_stream("jobs/j1/notes.txt", chunks())) == 4
    assert fake.get("jobs/j1/notes.txt") == b"abcd" and store.exists("jobs/j1/notes.txt")


def test_delete_prefix_walks_folders_and_spares_neighbours(fake: FakeSupabase, storage: SupabaseStorage) -> None:
    for key in ("jobs/j1/input/source.mp4", "jobs/j1/es/audio.mp3", "jobs/j1/es/parts/0001.wav",
                "jobs/j1/manifest.json", "jobs/j10/manifest.json", "jobs/j1.txt", "uploads/j1/voice.wav"):
        fake.put(key, b"x")
    assert sorted(storage.list_keys("jobs/j1")) == ["jobs/j1/es/audio.mp3", "jobs/j1/es/parts/0001.wav",
                                                    "jobs/j1/input/source.mp4", "jobs/j1/manifest.json"]
    storage.local_path("jobs/j1/input/source.mp4").parent.mkdir(parents=True)
    storage.local_path("jobs/j1/input/source.mp4").write_bytes(b"x")
    storage.delete_prefix("jobs/j1")
    assert fake.keys() == ["jobs/j1.txt", "jobs/j10/manifest.json", "uploads/j1/voice.wav"]
    assert not (storage.staging_dir / "jobs" / "j1").exists()
    storage.delete_prefix("jobs/j1")  # nothing left: still fine
    storage.delete_prefix("jobs/j1.txt")  # a single object
    assert fake.keys() == ["jobs/j10/manifest.json", "uploads/j1/voice.wav"]


def test_errors_are_ours(fake: FakeSupabase, storage: SupabaseStorage, tmp_path: Path, http: httpx.Client) -> None:
    with pytest.raises(NotFound):
        storage.fetch("uploads/none/voice.wav")
    with pytest.raises(NotFound):
        storage.signed_download_url("uploads/none/voice.wav", 60)
    with pytest.raises(NotFound):
        storage.size("uploads/none/voice.wav")

    wrong_bucket = SupabaseStorage(fake.url, SERVICE_KEY, "no-such-bucket", tmp_path, http=http)
    calls: list[Callable[[], object]] = [lambda: wrong_bucket.exists("a/b"), lambda: wrong_bucket.fetch("a/b"),
                                         lambda: wrong_bucket.create_signed_upload_url("a/b")]
    for call in calls:
        with pytest.raises(StorageError, match="no-such-bucket") as info:
            call()
        assert "DUBSTUDIO_SUPABASE_BUCKET" in info.value.hint

    wrong_key = SupabaseStorage(fake.url, "not-the-service-key", BUCKET, tmp_path, http=http)
    calls = [lambda: wrong_key.exists("a/b"), lambda: wrong_key.fetch("a/b"), lambda: wrong_key.delete_prefix("a")]
    for call in calls:
        with pytest.raises(StorageError) as info:
            call()
        assert "DUBSTUDIO_SUPABASE_KEY" in info.value.hint

    fake.fail_next += [503, 500]
    with pytest.raises(StorageError, match="503"):
        storage.exists("a/b")
    with pytest.raises(StorageError, match=BUCKET):
        storage.create_signed_upload_url("a/b")

    closed = SupabaseStorage(f"http://127.0.0.1:{free_port()}", SERVICE_KEY, BUCKET, tmp_path, http=http)
    with pytest.raises(StorageError, match="could not be reached") as info:
        closed.exists("a/b")
    assert "DUBSTUDIO_SUPABASE_URL" in info.value.hint


@pytest.mark.parametrize("key", ["../x", "a/../../b", "uploads/\0x", "uploads/vidéo.mp4", "uploads/%2e%2e/x",
                                 "uploads/a?b", "uploads/" + "a" * 300, "", "uploads/a\nb"])
def test_unsafe_keys_are_refused_before_any_request(key: str, fake: FakeSupabase, storage: SupabaseStorage) -> None:
    for call in (storage.exists, storage.fetch, storage.create_signed_upload_url, storage.delete_prefix,
                 storage.local_path):
        with pytest.raises(BadInput):
            call(key)
    assert sum(fake.calls.values()) == 0
    assert storage_key("uploads/./a//b.wav") == "uploads/a/b.wav"
