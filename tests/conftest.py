"""Shared fixtures: an isolated data folder and environment per test, and the fake vendors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.servers import serve

pytest_plugins = ["nicegui.testing.user_plugin"]

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"  # shared/ sits beside the checkout
JFK = MEDIA / "jfk-11s.flac"

# No test may read the developer's keychain, .env or data folder.
ISOLATED_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("DUBSTUDIO_") or name in ISOLATED_VARS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    data = tmp_path / "data"
    monkeypatch.setenv("DUBSTUDIO_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return data


@pytest.fixture(autouse=True)
def keep_dubstudio_modules() -> Iterator[None]:
    """NiceGUI's fixture drops the modules of page functions (and their parents: `dubstudio`) from
    sys.modules after each test; put them back so later tests see one `dubstudio` package."""
    import dubstudio.app  # noqa: F401  (the main file's imports, so they are in the snapshot)

    saved = {name: mod for name, mod in sys.modules.items() if name == "dubstudio" or name.startswith("dubstudio.")}
    yield
    for name, mod in saved.items():
        sys.modules.setdefault(name, mod)


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve(fake.app()) as url:
        yield fake, url + "/v1"


@pytest.fixture
def fake_openai(fake_openai_server: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """The fake translator, configured through the environment as a user would."""
    fake, url = fake_openai_server
    fake.fail_next.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return fake


@pytest.fixture(scope="session")
def fake_deepgram_server() -> Iterator[tuple[FakeDeepgram, str]]:
    fake = FakeDeepgram()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake_deepgram(fake_deepgram_server: tuple[FakeDeepgram, str], monkeypatch: pytest.MonkeyPatch) -> FakeDeepgram:
    """The fake Deepgram as both engines (speech to text and voices), configured as a user would."""
    fake, url = fake_deepgram_server
    fake.reset()
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-test-key")
    monkeypatch.setenv("DUBSTUDIO_DEEPGRAM_BASE_URL", url)
    monkeypatch.setenv("DUBSTUDIO_STT", "deepgram")
    monkeypatch.setenv("DUBSTUDIO_TTS", "deepgram")
    return fake
