"""Lines typed by hand: the manual translator waits for them, an edit makes a language again (only the
changed line spoken again), a regenerated line is heard at once (its stretch of the master patched, as a
full mix and master would write it), and a failed language is retried alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from dubstudio import actions
from dubstudio.config import Settings
from dubstudio.pipeline import fit, media, mix, synthesize
from dubstudio.pipeline.layout import sha256_file
from dubstudio.runtime import Database
from dubstudio.tasks import Queue
from tests.conftest import MEDIA
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.support.jobs import _get, dub

pytestmark = pytest.mark.slow
SOURCE = MEDIA / "speech-26s.wav"


def call(settings: Settings, fn: Any, *args: Any) -> Any:
    async def go() -> Any:
        db = Database.connect(settings)
        try:
            async with db.session() as s:
                return await fn(settings, s, "local", *args)
        finally:
            await db.close()

    return asyncio.run(go())


def manifest(workdir: Path) -> dict[str, Any]:
    return dict(json.loads((workdir / "manifest.json").read_text()))


def test_the_manual_translator_waits_for_typed_lines(fake_deepgram: FakeDeepgram,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUBSTUDIO_TRANSLATOR", "manual")  # no key, no local model: a person translates
    settings = Settings()
    done = dub(SOURCE, "es,fr", settings=settings)
    assert done.job.status == "awaiting_input"
    assert {t.language: t.status for t in done.job.languages} == {"es": "awaiting_translation",
                                                                  "fr": "awaiting_translation"}
    lines = call(settings, actions.language_lines, done.job.id, "es")
    assert lines and all(line["translation"] == "" for line in lines)

    typed = {line["id"]: f"línea {n}" for n, line in enumerate(lines)}
    half = dict(list(typed.items())[: len(typed) // 2])
    call(settings, actions.edit_lines, done.job.id, "es", half)
    Queue(settings).run_job.call_local(done.job.id)
    assert asyncio.run(_get(settings, done.job.id)).status == "awaiting_input"  # half is not enough

    call(settings, actions.edit_lines, done.job.id, "es", typed)
    Queue(settings).run_job.call_local(done.job.id)
    job = asyncio.run(_get(settings, done.job.id))
    assert {t.language: t.status for t in job.languages} == {"es": "done", "fr": "awaiting_translation"}
    segs = manifest(done.workdir)["languages"]["es"]["segments"]
    assert [s["translation"] for s in segs] == list(typed.values())


def test_an_edit_speaks_only_the_changed_line_again(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> None:
    settings = Settings()
    done = dub(SOURCE, "es", settings=settings)
    assert done.job.status == "done"
    before = manifest(done.workdir)["languages"]["es"]["segments"]
    spoken = fake_deepgram.calls["speak"]
    target = before[1]["id"]
    call(settings, actions.edit_lines, done.job.id, "es", {target: "Una línea nueva."})
    Queue(settings).run_job.call_local(done.job.id)
    assert asyncio.run(_get(settings, done.job.id)).status == "done"
    after = manifest(done.workdir)["languages"]["es"]["segments"]
    assert [s["translation"] for s in after if s["id"] == target] == ["Una línea nueva."]
    assert [s for s in after if s["id"] != target] == [s for s in before if s["id"] != target]
    assert fake_deepgram.calls["speak"] - spoken == 1
    lines = call(settings, actions.language_lines, done.job.id, "es")
    assert [line["edited"] for line in lines].count(True) == 1


def test_a_failed_language_is_retried_alone(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> None:
    settings = Settings()
    fake_openai.fail_next.append(401)  # the translator refuses the key once
    failed = dub(SOURCE, "es", settings=settings)
    assert failed.job.status == "failed"
    assert "OPENAI_API_KEY" in (failed.job.languages[0].error_message or "")
    call(settings, lambda st, s, u, j, lang: actions.retry(s, u, j, lang), failed.job.id, "es")
    listened = fake_deepgram.calls["listen"]
    Queue(settings).run_job.call_local(failed.job.id)
    assert asyncio.run(_get(settings, failed.job.id)).status == "done"
    assert fake_deepgram.calls["listen"] == listened  # the transcript was reused


def test_a_corrected_source_line_is_aligned_translated_and_spoken_again(fake_openai: FakeOpenAI) -> None:
    from tests.conftest import JFK

    settings = Settings()
    done = dub(JFK, "es", settings=settings)  # offline engines: pocketsphinx hears "and all my fellow america"
    first = manifest(done.workdir)["languages"]["es"]["segments"][0]
    asked = len(fake_openai.requests)
    call(settings, lambda st, s, u, j, lang, texts: actions.edit_lines(st, s, u, j, lang, {}, texts),
         done.job.id, "es", {first["id"]: "And so my fellow Americans"})
    Queue(settings).run_job.call_local(done.job.id)
    assert asyncio.run(_get(settings, done.job.id)).status == "done"
    row = manifest(done.workdir)["languages"]["es"]["segments"][0]
    assert row["text"] == "And so my fellow Americans" and row["translation"] != first["translation"]
    assert "fellow Americans" in (done.workdir / "captions.en.srt").read_text()
    assert len(fake_openai.requests) > asked  # the corrected line was translated again


def test_a_regenerated_line_is_heard_at_once_as_a_full_remix_would_make_it(fake_openai: FakeOpenAI,
                                                                              tmp_path: Path) -> None:
    from tests.conftest import JFK

    settings = Settings()
    done = dub(JFK, "es", settings=settings)  # offline engines
    wd, ld = done.workdir, done.workdir / "es"
    first = manifest(wd)["languages"]["es"]
    old_master, old_voice = sf.read(ld / "dub.wav", dtype="int32")[0], (ld / "voice.wav").read_bytes()
    made = json.loads((ld / "master.json").read_text())
    target = first["segments"][len(first["segments"]) // 2]  # a line in the middle: the master goes on after it
    text = "Una línea nueva, mucho más larga que la de antes, para que ocupe otro sitio."

    def regenerate(st: Settings, s: Any, user: str, job_id: str) -> Any:
        return actions.regenerate_line(st, s, Queue(st).engines, user, job_id, "es", target["id"], text)

    preview = call(settings, regenerate, done.job.id)
    assert preview is not None and preview.row["translation"] == text
    assert asyncio.run(_get(settings, done.job.id)).status == "queued"  # the full deliverables follow

    # Only the line's stretch of the master changed ...
    rate = sf.info(ld / "dub.wav").samplerate
    a, z = round(preview.start * rate), round(preview.end * rate)
    new_master = sf.read(ld / "dub.wav", dtype="int32")[0]
    assert a <= round(target["dub_start"] * rate) and z >= round(preview.row["dub_end"] * rate)
    assert 0 < a < z < new_master.size
    assert np.array_equal(new_master[:a], old_master[:a]) and np.array_equal(new_master[z:], old_master[z:])
    assert not np.array_equal(new_master[a:z], old_master[a:z])
    # ... and the whole master and voice are byte for byte a full mix and master at the last master's gain.
    starts = {s["id"]: s["start"] for s in json.loads((wd / "transcript.json").read_text())["segments"]}
    placements = [fit.Placement(round(starts[x.segment_id] * rate), ld / "fitted" / f"{x.segment_id}.wav")
                  for x in synthesize.load(ld / "lines.json") if x.clip]
    mix.run(wd / "work" / "source.wav", placements, tmp_path / "mix.wav", tmp_path / "voice.wav",
            settings.duck_db, settings.duck_ramp_ms)
    media.master(tmp_path / "mix.wav", made["gain_db"], made["limit_db"], tmp_path / "dub.wav", tmp_path / "dub.m4a")
    assert (ld / "dub.wav").read_bytes() == (tmp_path / "dub.wav").read_bytes()
    assert (ld / "voice.wav").read_bytes() == (tmp_path / "voice.wav").read_bytes() != old_voice
    spoken = {name: (ld / name).read_bytes() for name in ("lines.json", "voice.wav")}
    fitted = sf.read(ld / "fitted" / f"{target['id']}.wav")[0]  # (a float WAV's header holds the time it was written)
    assert json.loads((ld / "preview.json").read_text())["segment_id"] == target["id"]

    # Not while the job is queued: the edit is kept for the run, nothing is patched.
    assert call(settings, regenerate, done.job.id) is None

    # The full run: the stage outputs are those the preview made, the manifest agrees with them and the files.
    Queue(settings).run_job.call_local(done.job.id)
    assert asyncio.run(_get(settings, done.job.id)).status == "done"
    after = manifest(wd)["languages"]["es"]
    assert {name: (ld / name).read_bytes() for name in spoken} == spoken
    assert np.array_equal(sf.read(ld / "fitted" / f"{target['id']}.wav")[0], fitted)
    assert [s for s in after["segments"] if s["id"] == target["id"]] == [preview.row]
    assert [s for s in after["segments"] if s["id"] != target["id"]] == \
        [s for s in first["segments"] if s["id"] != target["id"]]
    assert json.loads((ld / "result.json").read_text()) == after
    for artifact in after["artifacts"]:
        assert sha256_file(wd / artifact["path"]) == artifact["sha256"]
    remade = json.loads((ld / "master.json").read_text())
    assert remade["translations"][target["id"]] == text and not (ld / "preview.json").exists()
    # The run measured the loudness again: the preview's level was off by this little.
    assert abs(remade["gain_db"] - made["gain_db"]) < 1.0
