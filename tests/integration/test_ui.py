"""The pages through NiceGUI's simulated user. The home page: the form, a real dub of JFK into Spanish
through the in-process queue consumer, refused files, and the download route. The job page: a finished
job's progress, waveform, lines, loudness, downloads and line clips; an edited line regenerated. The
settings page: keys in the keychain (never shown in full), Test keys, defaults saved and used by the next
job. The home page's engine choice and cost estimate; retry, cancel and delete from the job list."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User

from tests.conftest import JFK
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.support.jobs import Done, dub, integrated_lufs

JOB_SECONDS = 90  # the dub itself takes ~10-20 s; generous for a loaded CI machine


async def upload(user: User, name: str, content_type: str, data: bytes, marker: str = "upload") -> None:
    element = user.find(kind=ui.upload, marker=marker).elements.pop()
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


async def test_dub_a_voice_over_a_background_track(fake_openai: FakeOpenAI, user: User, tmp_path: Path) -> None:
    music = tmp_path / "music.wav"
    t = np.arange(12 * 22050) / 22050
    sf.write(music, (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    await user.open("/")
    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await upload(user, "notes.txt", "text/plain", b"hello", marker="upload-background")
    await user.should_see("notes.txt is not an audio or video file", retries=50)
    await upload(user, "music.wav", "audio/wav", music.read_bytes(), marker="upload-background")
    await user.should_see("Background: music.wav", retries=50)
    user.find(marker="dub").click()
    await user.should_see("Queued jfk-11s.flac for Spanish.", retries=50)
    await user.should_see(marker="status-done", retries=JOB_SECONDS * 10)
    await user.should_see("No background track", retries=20)  # the form is ready for the next file
    jobs = list((Path(os.environ["DUBSTUDIO_DATA_DIR"]) / "storage" / "jobs").iterdir())
    manifest = json.loads((jobs[0] / "manifest.json").read_text())
    assert manifest["source"]["background"], manifest["source"]  # stems: mixed over the track given


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
    await user.should_not_see(marker="cancel-job")

    fake_openai.fail_next.clear()  # the key is fixed: Retry in the history makes the job again
    user.find(marker="retry-job").click()
    await user.should_see("Trying jfk-11s.flac again…", retries=20)
    await user.should_see(marker="status-done", retries=JOB_SECONDS * 10)
    await user.should_see(marker="audio-es", retries=20)
    await user.should_not_see(marker="retry-job")


# --- the job page ------------------------------------------------------------------------------------

async def finished_job() -> Done:
    """JFK dubbed into Spanish with the fake engines, in process (not through the page)."""
    done = await asyncio.to_thread(dub, JFK)
    assert done.job.status == "done"
    return done


def spanish_lines(done: Done) -> list[dict[str, Any]]:
    return list(json.loads((done.workdir / "manifest.json").read_text())["languages"]["es"]["segments"])


def only(user: User, marker: str) -> Any:
    elements = user.find(marker=marker).elements
    assert len(elements) == 1, (marker, elements)
    return next(iter(elements))


async def test_the_job_page_shows_a_finished_job(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI,
                                                 user: User) -> None:
    done = await finished_job()
    lines = spanish_lines(done)
    await user.open("/")
    link = only(user, "open-job")
    assert isinstance(link, ui.link) and link.props["href"] == f"/jobs/{done.job.id}"
    await user.open(f"/jobs/{done.job.id}")
    await user.should_see("jfk-11s.flac")
    await user.should_see(marker="status-done")
    for stage in ("ingest", "transcribe", "translate", "synthesize", "fit", "mix", "captions", "deliver"):
        assert "stage-done" in only(user, f"stage-es-{stage}")._markers

    await user.should_see(marker="waveform", retries=50)
    chart = only(user, "waveform")
    assert isinstance(chart, ui.echart)
    areas = chart.options["series"][2]["markArea"]["data"]
    assert [(a[0]["xAxis"], a[1]["xAxis"]) for a in areas] == [(s["source_start"], s["source_end"]) for s in lines]
    assert len(chart.options["series"][0]["data"]) > 100

    for n, segment in enumerate(lines):
        await user.should_see(marker=f"line-es-{n}")
        assert only(user, f"translation-es-{n}").value == segment["translation"]
        await user.should_see(segment["text"])
        badge = only(user, f"fit-es-{n}")
        assert badge.text in ("fits", "silent") or badge.text.startswith(("sped up ×", "overflow "))
    loudness = only(user, "loudness-es")
    expected = json.loads((done.workdir / "manifest.json").read_text())["languages"]["es"]["loudness"]
    assert f"{expected['integrated_lufs']:.1f} LUFS" in loudness.text and "dBTP" in loudness.text

    for marker, start in {"download-es-wav": b"RIFF", "download-es-vtt": b"WEBVTT", "download-manifest": b"{"}.items():
        user.find(marker=marker).click()
        response = await user.download.next(timeout=5)
        assert response.status_code == 200 and response.content.startswith(start), marker

    # A click on a line's region plays that line of the original
    user.find(marker="waveform").trigger("componentClick", {"componentType": "markArea", "name": "2"})
    await user.should_see("Playing the original of line 2")
    start = f"{lines[1]['source_start'] - 0.05:.3f}"
    assert only(user, "line-player").source.startswith(f"/clip/{done.job.id}/source?start={start}&")

    # A/B of one line: the original and the dub, each a short WAV cut around the line
    for marker, track in (("play-original-es-0", "source"), ("play-dub-es-0", "es")):
        user.find(marker=marker).click()
        player = only(user, "line-player")
        assert player.source.startswith(f"/clip/{done.job.id}/{track}?start=")
        response = await user.http_client.get(player.source)
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        data, rate = sf.read(io.BytesIO(response.content))
        seconds = lines[0]["source_end"] - lines[0]["source_start"]
        assert seconds <= len(data) / rate <= seconds + 2 and np.abs(data).max() > 0.01, marker


async def test_an_unknown_job_page_says_so(user: User) -> None:
    await user.open("/jobs/0123456789abcdef")
    await user.should_see("There is no such job. It may have been deleted.")
    response = await user.http_client.get("/clip/0123456789abcdef/source?start=0&end=1")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_edit_a_line_and_regenerate_it(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI,
                                             user: User) -> None:
    done = await finished_job()
    before = spanish_lines(done)
    await user.open(f"/jobs/{done.job.id}")
    await user.should_see(marker="line-es-3")
    old_dub = only(user, "play-dub-es-3")
    user.find(marker="play-dub-es-3").click()
    old_clip = only(user, "line-player").source

    user.find(marker="translation-es-3").clear()
    user.find(marker="regenerate-es-3").click()
    await user.should_see("Type a translation for line 4 first.")

    spoken = fake_deepgram.calls["speak"]
    user.find(marker="translation-es-3").type("Una línea nueva.")
    user.find(marker="regenerate-es-3").click()
    await user.should_see("Regenerating line 4 in Spanish…", retries=20)
    await user.should_see(marker="regenerating-es-3", retries=20)
    await user.should_see("Edited by hand", retries=JOB_SECONDS * 10)  # shown once the line is made again
    await user.should_see(marker="status-done")

    after = spanish_lines(done)
    assert after[3]["translation"] == "Una línea nueva."
    assert [s for i, s in enumerate(after) if i != 3] == [s for i, s in enumerate(before) if i != 3]
    assert fake_deepgram.calls["speak"] - spoken == 1  # only the edited line was spoken again
    assert only(user, "translation-es-3").value == after[3]["translation"]
    new_dub = only(user, "play-dub-es-3")
    assert new_dub is not old_dub
    user.find(marker="play-dub-es-3").click()
    assert only(user, "line-player").source != old_clip  # the new audio, not a cached old clip


async def test_change_a_speakers_voice_and_correct_a_source_line(fake_deepgram: FakeDeepgram,
                                                                  fake_openai: FakeOpenAI, user: User) -> None:
    done = await finished_job()
    before = spanish_lines(done)
    await user.open(f"/jobs/{done.job.id}")
    await user.should_see(marker="voice-es-0", retries=20)
    speaker, old = before[0]["speaker"], before[0]["voice"]
    new = next(v for v in only(user, "voice-es-0").options if v != old)
    spoken = fake_deepgram.calls["speak"]
    choose(user, "voice-es-0", new)
    await user.should_see(f"Speaker {speaker} now speaks Spanish with {new}", retries=20)
    await user.should_see(marker="status-done", retries=JOB_SECONDS * 10)
    after = spanish_lines(done)
    theirs = [i for i, row in enumerate(before) if row["speaker"] == speaker]
    assert all(after[i]["voice"] == new for i in theirs)
    assert fake_deepgram.calls["speak"] - spoken == len(theirs)  # only their lines were spoken again

    user.find(marker="edit-source-es-0").click()
    await user.should_see(marker="source-text", retries=20)
    user.find(marker="source-text").clear()
    user.find(marker="source-text").type("And so, my fellow citizens.")
    user.find(marker="save-source").click()
    await user.should_see("Line 1 corrected; every language makes it again.", retries=20)
    await user.should_see(marker="status-done", retries=JOB_SECONDS * 10)
    assert spanish_lines(done)[0]["text"] == "And so, my fellow citizens."
    await user.should_see("And so, my fellow citizens.", retries=20)


async def test_a_failed_language_is_told_and_tried_again_from_its_page(fake_deepgram: FakeDeepgram,
                                                                       fake_openai: FakeOpenAI, user: User) -> None:
    fake_openai.fail_next.extend([401] * 10)  # the translator refuses the key
    done = await asyncio.to_thread(dub, JFK)
    assert done.job.status == "failed"
    await user.open(f"/jobs/{done.job.id}")
    await user.should_see(marker="status-failed")
    error = only(user, "error-es")
    assert "OPENAI_API_KEY" in error.text and "Traceback" not in error.text
    assert "stage-failed" in only(user, "stage-es-translate")._markers
    assert "stage-done" in only(user, "stage-es-transcribe")._markers

    fake_openai.fail_next.clear()  # the key is fixed
    user.find(marker="retry-es").click()
    await user.should_see("Trying Spanish again…", retries=20)
    await user.should_see(marker="audio-es", retries=JOB_SECONDS * 10)
    await user.should_see(marker="status-done", retries=50)
    await user.should_not_see(marker="error-es")


def test_the_waveform_and_clips_are_read_in_blocks(tmp_path: Path, monkeypatch: Any) -> None:
    from dubstudio.ui import sound

    rate = 8000
    signal = np.zeros((3 * rate, 2), dtype=np.float32)
    signal[rate:rate + rate // 2] = 0.5  # a burst from 1.0 s to 1.5 s, on both channels
    path = tmp_path / "burst.wav"
    sf.write(path, signal, rate)
    monkeypatch.setattr(sound, "BLOCK", 50)  # several reads a bucket, as for a long file
    env = sound.envelope(path, points=60)
    assert env.duration == 3.0 and 0 < len(env.times) <= 60 and env.times == sorted(env.times)
    loud = [t for t, p in zip(env.times, env.peaks, strict=True) if p > 0.4]
    assert loud and 0.9 <= loud[0] <= 1.0 and 1.4 <= loud[-1] < 1.5
    data, clip_rate = sf.read(io.BytesIO(sound.clip(path, 1.0, 1.5)))
    assert clip_rate == rate and data.shape == (rate // 2, 2) and np.allclose(np.abs(data), 0.5, atol=1e-3)
    assert len(sf.read(io.BytesIO(sound.clip(path, 2.5, 9.0)))[0]) == rate // 2  # cut at the end


def test_stages_and_fit_in_words() -> None:
    from dubstudio.ui.job_page import fit_summary, stage_states

    running = stage_states({"status": "running", "stage": "synthesize"})
    assert [state for _, state in running] == ["done"] * 3 + ["current"] + ["pending"] * 4
    assert {state for _, state in stage_states({"status": "done", "stage": "deliver"})} == {"done"}
    assert stage_states({"status": "awaiting_translation", "stage": "translate"})[2] == ("translate", "waiting")
    assert {state for _, state in stage_states({"status": "queued", "stage": "deliver"})} == {"pending"}
    row = {"dub_start": 1.0, "dub_end": 2.0, "stretch": 1.0, "rate": 1.0, "overflow": 0.0}
    assert fit_summary(row)[:2] == ("fits", "positive")
    assert fit_summary({**row, "stretch": 1.1, "rate": 1.1})[:2] == ("sped up ×1.21", "warning")
    assert fit_summary({**row, "overflow": 0.4})[:2] == ("overflow 0.40 s", "negative")
    assert fit_summary({})[0] == "not made yet"


# --- the settings page, the estimate, engine choice and the job history -----------------------------

@pytest.fixture
def keychain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A file keychain (keyrings.alt) in the test's folder, for this process and the job processes it
    starts (they find it through the same variables)."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    before = keyring.get_keyring()
    kr = PlaintextKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


def everything_on_the_page(user: User) -> str:
    """Every element's text, value and props as the browser would get them."""
    assert user.client is not None
    return json.dumps([e._to_dict() for e in user.client.elements.values()], default=str)


def choose(user: User, marker: str, value: Any) -> None:
    """Set a select (or switch, number) as a person would by picking, which fires its change handlers."""
    with user:
        only(user, marker).value = value


async def save_key(user: User, vendor: str, key: str) -> None:
    user.notify.messages.clear()  # the notice of an earlier save must not count
    user.find(marker=f"key-input-{vendor}").type(key)
    user.find(marker=f"key-save-{vendor}").click()
    await user.should_see("key is saved in the keychain", retries=50)


async def run_key_test(user: User) -> tuple[list[str], list[str]]:
    """Press Test keys and wait for its answer: the words of the checks that passed and that failed."""
    user.find(marker="test-keys").click()
    await user.should_see("Testing the keys…", retries=20)
    await user.should_not_see("Testing the keys…", retries=600)

    def words(marker: str) -> list[str]:
        return [" ".join(str(getattr(e, "text", "")) for e in row.descendants())
                for row in user.find(marker="checks").elements.pop().descendants() if marker in row._markers]

    return words("check-ok"), words("check-fail")


async def test_keys_go_to_the_keychain_and_are_never_shown_in_full(keychain: Any, user: User) -> None:
    key = "dg-0123456789abcdef"
    await user.open("/")
    user.find(marker="settings-link").click()
    await user.should_see("Engine keys")
    assert only(user, "key-status-deepgram").text == "not set, no key yet"
    user.find(marker="key-save-deepgram").click()
    await user.should_see("Type the Deepgram key first.")

    await save_key(user, "deepgram", key)
    await user.should_see("The Deepgram key is saved in the keychain.")
    assert keychain.get_password("dubstudio", "deepgram_api_key") == key
    await user.should_see("•••• cdef, from the keychain (dubstudio/deepgram_api_key)", retries=20)
    assert only(user, "key-input-deepgram").value == ""
    assert key not in everything_on_the_page(user)

    # The running server has it at once: the home page offers Deepgram now
    await user.open("/")
    assert set(only(user, "engine-stt").options) == {"offline", "deepgram"}
    assert set(only(user, "engine-tts").options) == {"offline", "deepgram"}
    assert "Deepgram" not in only(user, "engines-missing").default_slot.children[0].text

    await user.open("/settings")
    await user.should_see(marker="key-remove-deepgram", retries=20)
    user.find(marker="key-remove-deepgram").click()
    await user.should_see("The Deepgram key is removed from the keychain.", retries=50)
    assert keychain.get_password("dubstudio", "deepgram_api_key") is None
    await user.should_see("not set, no key yet", retries=20)


async def test_test_keys_says_which_key_works(keychain: Any, fake_deepgram_server: tuple[FakeDeepgram, str],
                                             fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
                                             isolated_env: Path, user: User) -> None:
    fake, url = fake_deepgram_server
    fake.reset()
    monkeypatch.setenv("DUBSTUDIO_DEEPGRAM_BASE_URL", url)  # the key itself comes from the keychain
    bad, good = "wrong-key-0000000000", "dg-test-key"
    await user.open("/settings")
    await user.should_see("Engine keys")
    choose(user, "default-stt", "deepgram")
    await user.should_see("Needs a key.")
    user.find(marker="save-settings").click()
    await user.should_see("Saved. The next job uses these settings.", retries=50)
    assert json.loads((isolated_env / "settings.json").read_text()) == {"stt": "deepgram"}

    await save_key(user, "deepgram", bad)
    passed, failed = await run_key_test(user)
    assert len(passed) == 2 and len(failed) == 1, (passed, failed)  # the translator and the offline voices work
    assert "Speech to text: Deepgram (key from the keychain" in failed[0]
    assert "refused the key" in failed[0] and "DEEPGRAM_API_KEY" in failed[0] and "Traceback" not in failed[0]

    await save_key(user, "deepgram", good)
    passed, failed = await run_key_test(user)
    assert len(passed) == 3 and not failed, (passed, failed)
    assert "key works" in passed[0]
    page = everything_on_the_page(user)
    assert good not in page and bad not in page and "sk-test" not in page


async def test_saved_settings_are_used_by_the_next_job(fake_openai: FakeOpenAI, isolated_env: Path,
                                                       user: User) -> None:
    from dubstudio.config import Settings

    await user.open("/settings")
    await user.should_see("Sound and storage")
    # The environment decides the translator's server here: the page says so and keeps its hands off
    assert "OPENAI_BASE_URL" in only(user, "locked-openai_base_url").text
    assert not only(user, "openai-base-url").enabled
    choose(user, "loudness-target", -40)
    user.find(marker="save-settings").click()
    await user.should_see("Loudness target: input should be greater than or equal to -31.", retries=20)
    assert not (isolated_env / "settings.json").exists()

    choose(user, "loudness-target", -23)
    choose(user, "retention-hours", 72)
    user.find(marker="add-voice").click()
    rows = user.find(marker="voice-name").elements
    assert len(rows) == 1
    user.find(marker="voice-name").type("es+f3")
    user.find(marker="save-settings").click()
    await user.should_see("Saved. The next job uses these settings.", retries=50)
    saved = json.loads((isolated_env / "settings.json").read_text())
    assert saved == {"loudness_target": -23.0, "retention_hours": 72.0, "voices": {"es": {"S1": "es+f3"}}}
    fresh = Settings()  # what the next start (and each job's process) reads
    assert fresh.loudness_target == -23.0 and fresh.retention_hours == 72.0 and fresh.openai_base_url

    await user.open("/settings")  # shown again as saved
    assert only(user, "loudness-target").value == -23.0
    assert only(user, "voice-name").value == "es+f3"

    await user.open("/")
    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await user.should_see("Ready: jfk-11s.flac", retries=50)
    user.find(marker="dub").click()
    await user.should_see(marker="status-done", retries=JOB_SECONDS * 10)
    job_dir = next((isolated_env / "storage" / "jobs").iterdir())
    manifest = json.loads((job_dir / "manifest.json").read_text())
    assert manifest["languages"]["es"]["loudness"]["target_lufs"] == -23.0
    assert abs(integrated_lufs(job_dir / "es" / "dub.wav") + 23.0) <= 1.0


async def test_the_estimate_follows_the_file_languages_and_engines(fake_deepgram: FakeDeepgram,
                                                                  fake_openai: FakeOpenAI, user: User) -> None:
    from dubstudio import actions
    from dubstudio.config import Settings
    from dubstudio.pipeline.media import probe
    from dubstudio.vendors import registry

    await user.open("/")
    await user.should_see("The cost estimate appears once a file is chosen.")
    stt, tts, translator = only(user, "engine-stt"), only(user, "engine-tts"), only(user, "engine-translator")
    assert (stt.value, tts.value, translator.value) == ("deepgram", "deepgram", "openai")  # the settings' defaults
    assert set(stt.options) == {"offline", "deepgram"} and set(tts.options) == {"offline", "deepgram"}
    assert "ElevenLabs needs the premium voices switched on." in only(user, "engines-missing").default_slot \
        .children[0].text

    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await user.should_see("Ready: jfk-11s.flac", retries=50)
    duration = probe(JFK).duration
    assert duration

    def expected(options: dict[str, str], targets: list[str]) -> float:
        return float(actions.estimate(registry.for_job(Settings(), options), duration, targets)["total"])

    cloud = expected({}, ["es"])
    assert cloud > 0
    await user.should_see(f"Estimated cost: ${cloud:.4f} for 11 s in 1 language(s)")
    choose(user, "target-languages", ["es", "fr"])
    await user.should_see(f"Estimated cost: ${expected({}, ['es', 'fr']):.4f} for 11 s in 2 language(s)")
    choose(user, "engine-stt", "offline")
    choose(user, "engine-tts", "offline")
    cheaper = expected({"stt": "offline", "tts": "offline"}, ["es", "fr"])
    assert 0 < cheaper < cloud
    await user.should_see(f"Estimated cost: ${cheaper:.4f}")
    choose(user, "engine-translator", "manual")
    await user.should_see("Estimated cost: nothing (11 s; every engine chosen is free).")


async def stored_job(job_id: str) -> Any:
    from dubstudio import actions
    from dubstudio.config import Settings
    from dubstudio.runtime import Database

    db = Database.connect(Settings())
    try:
        async with db.session() as s:
            return await actions.get_job(s, "local", job_id)
    finally:
        await db.close()


async def test_cancel_and_delete_a_job_from_the_history(isolated_env: Path, user: User) -> None:
    await user.open("/")
    translator = only(user, "engine-translator")
    assert set(translator.options) == {"manual"} and translator.value is None  # nothing set up: no silent choice
    choose(user, "engine-translator", "manual")  # lines typed by hand: the job waits for them
    await upload(user, "jfk-11s.flac", "audio/flac", JFK.read_bytes())
    await user.should_see("Ready: jfk-11s.flac", retries=50)
    user.find(marker="dub").click()
    await user.should_see(marker="cancel-job", retries=50)
    folder = next((isolated_env / "storage" / "jobs").iterdir())
    job_id = folder.name
    assert (await stored_job(job_id)).options == {"stt": "offline", "translator": "manual", "tts": "offline"}

    user.find(marker="cancel-job").click()
    await user.should_see("Cancelled jfk-11s.flac.", retries=50)
    await user.should_see(marker="status-cancelled", retries=50)
    await user.should_not_see(marker="cancel-job")
    await user.should_see(marker="retry-job")  # a cancelled job may go on later

    user.find(marker="delete-job").click()
    await user.should_see("Delete jfk-11s.flac?")
    user.find(marker="keep-job").click()
    await user.should_not_see("Delete jfk-11s.flac?")
    await user.should_see(marker=f"job-{job_id}")
    assert folder.exists()

    user.find(marker="delete-job").click()
    await user.should_see("Delete jfk-11s.flac?")
    user.find(marker="confirm-delete").click()
    await user.should_see("Deleted jfk-11s.flac and its files.", retries=50)
    await user.should_not_see(marker=f"job-{job_id}", retries=50)
    await user.should_see("No jobs yet")
    for _ in range(50):  # a job process that was stopping removes what it wrote last
        if not folder.exists():
            break
        await asyncio.sleep(0.1)
    assert not folder.exists()
    assert (await stored_job(job_id)).status == "deleted"
