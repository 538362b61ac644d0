"""The settings page's file: below the environment and .env, whichever variable name they use; a broken
file or value is skipped; keys and where the data lives are never taken from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dubstudio.config import Settings, read_saved, write_saved


def test_saved_values_are_read_on_the_next_start(isolated_env: Path) -> None:
    write_saved(isolated_env, {"tts": "deepgram", "loudness_target": -23, "voices": {"es": {"S1": "es+f3"}},
                               "openai_base_url": "http://saved/v1", "retention_hours": None})
    s = Settings()
    assert (s.tts, s.loudness_target, s.voices, s.openai_base_url) == ("deepgram", -23.0, {"es": {"S1": "es+f3"}},
                                                                       "http://saved/v1")
    assert "retention_hours" not in json.loads((isolated_env / "settings.json").read_text())


def test_the_environment_and_dotenv_win(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_saved(isolated_env, {"tts": "deepgram", "openai_base_url": "http://saved/v1", "openai_model": "saved"})
    monkeypatch.setenv("DUBSTUDIO_TTS", "offline")
    (tmp_path / ".env").write_text("DUBSTUDIO_OPENAI_BASE_URL=http://dotenv/v1\nDUBSTUDIO_OPENAI_MODEL=dotenv\n")
    s = Settings()
    assert (s.tts, s.openai_base_url, s.openai_model) == ("offline", "http://dotenv/v1", "dotenv")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    assert Settings().openai_base_url == "http://env/v1"


def test_a_broken_file_never_stops_the_app(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True, exist_ok=True)
    path = isolated_env / "settings.json"
    path.write_text(json.dumps({"tts": "nope", "loudness_target": -40, "retention_hours": 2,
                                "openai_api_key": "sk-from-file", "data_dir": "/elsewhere"}))
    s = Settings()
    assert (s.tts, s.loudness_target, s.retention_hours) == ("offline", -16.0, 2.0)
    assert s.openai_api_key is None and s.data_dir == isolated_env
    path.write_text("{not json")
    assert read_saved(isolated_env) == {} and Settings().retention_hours == 0


def test_only_page_settings_are_written(isolated_env: Path) -> None:
    with pytest.raises(ValueError, match="openai_api_key"):
        write_saved(isolated_env, {"openai_api_key": "sk-secret"})
    with pytest.raises(ValueError):
        write_saved(isolated_env, {"loudness_target": 3})
    assert not (isolated_env / "settings.json").exists()
