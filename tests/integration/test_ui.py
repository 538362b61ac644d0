"""The home page through NiceGUI's simulated user: the form, a real dub of JFK into Spanish through the
in-process queue consumer, refused files, and the download route."""

from __future__ import annotations

import json
from pathlib import Path

from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User

from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI

JOB_SECONDS = 90  # the dub itself takes ~10-20 s; generous for a loaded CI machine


async def upload(user: User, name: str, content_type: str, data: bytes) -> None:
    element = user.find(ui.upload).elements.pop()
    await element.handle_uploads([SmallFileUpload(name, content_type, data)])


async def test_home_shows_the_form(user: User) -> None:
    await user.open("/")
    await user.should_see("dubstudio")
    await user.should_see(marker="dark-toggle")
    await user.should_see(kind=ui.upload, marker="upload")
    source = user.find(marker="source-language").elements.pop()
    targets = user.find(marker="target-languages").elements.pop()
    assert isinstance(source, ui.select) and isinstance(targets, ui.select)
    assert source.value == "en" and "auto" in source.options
    assert targets.value == ["es"] and targets.options["es"] == "Spanish"
    await user.should_see(marker="dub")
    await user.should_see("No jobs yet")


async def test_dub_without_a_file_asks_for_one(user: User) -> None:
    await user.open("/")
    user.find(marker="dub").click()
    await user.should_see("Choose an audio or video file first.")
    await user.should_not_see(marker="job")


async def test_a_file_that_is_not_media_is_refused_in_plain_words(user: User, isolated_env: Path) -> None:
    await user.open("/")
    await upload(user, "notes.txt", "text/plain", b"hello")
    await user.should_see("notes.txt is not an audio or video file", retries=50)
    assert not any("Traceback" in m for m in user.notify.messages)
    await user.should_see("No file chosen yet.")
    user.find(marker="dub").click()
    await user.should_see("Choose an audio or video file first.")
    await user.should_not_see(marker="job")
    assert not list((isolated_env / "storage").glob("jobs/*"))
    assert not list(isolated_env.glob("ui-staging/*"))


async def test_without_a_translator_dub_says_how_to_set_one_up(user: User) -> None:
    await user.open("/")
    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await user.should_see("Ready: jfk-11s.flac", retries=50)
    user.find(marker="dub").click()
    await user.should_see("No translator is configured.", retries=50)
    await user.should_see("Ready: jfk-11s.flac")  # kept: fix the setting and press Dub again
    await user.should_not_see(marker="job")


async def test_dub_jfk_into_spanish(fake_openai: FakeOpenAI, user: User) -> None:
    # fake_openai first: the main file reads the environment when the user fixture starts
    await user.open("/")
    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await user.should_see("Ready: jfk-11s.flac", retries=50)
    user.find(marker="dub").click()
    await user.should_see("Queued jfk-11s.flac for Spanish.", retries=50)
    await user.should_see(marker="job")
    await user.should_see("jfk-11s.flac")

    await user.should_see(marker="status-done", retries=JOB_SECONDS * 10)
    await user.should_see(kind=ui.audio, marker="audio-es", retries=20)
    await user.should_see(marker="lang-es")
    assert fake_openai.calls > 0

    expected = {"download-es-wav": b"RIFF", "download-es-m4a": b"", "download-es-srt": b"1\n",
                "download-manifest": b"{"}
    for marker, start in expected.items():
        user.find(marker=marker).click()
        response = await user.download.next(timeout=5)
        assert response.status_code == 200, marker
        assert response.content.startswith(start) and len(response.content) > 0, marker
        if marker == "download-es-m4a":
            assert response.content[4:8] == b"ftyp"
        if marker == "download-manifest":
            assert "es" in json.loads(response.content)["languages"]
    assert 'filename="jfk-11s.es.wav"' in user.download.http_responses[0].headers["content-disposition"]


async def test_download_route_serves_only_recorded_files(user: User) -> None:
    await user.open("/")
    response = await user.http_client.get("/download/0123456789abcdef0123456789abcdef/es/dub.wav")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = await user.http_client.get("/download/x/../../dubstudio.db")
    assert response.status_code == 404


async def test_a_failed_language_shows_its_error_in_plain_words(fake_openai: FakeOpenAI, user: User) -> None:
    fake_openai.fail_next.extend([401] * 10)  # the translator refuses the key: retrying cannot help
    await user.open("/")
    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await user.should_see("Ready: jfk-11s.flac", retries=50)
    user.find(marker="dub").click()
    await user.should_see(marker="status-failed", retries=JOB_SECONDS * 10)
    await user.should_see(marker="lang-error", retries=20)
    error = user.find(marker="lang-error").elements.pop()
    assert isinstance(error, ui.label) and error.text and "Traceback" not in error.text
    await user.should_not_see(kind=ui.audio)
