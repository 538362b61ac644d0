"""Settings come from the environment, then .env, then the keychain; the local token is made once."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as NoKeyring
from keyring.errors import PasswordDeleteError

from dubstudio.auth.local import api_token, check_bearer, token_location
from dubstudio.config import Settings
from dubstudio.errors import AuthError


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


@pytest.fixture
def keychain() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


@pytest.fixture
def no_keychain() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    yield
    keyring.set_keyring(before)


def test_vendor_variables_and_prefixed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("DUBSTUDIO_PORT", "9999")
    s = Settings()
    assert s.secret("openai_api_key") == "sk-env"
    assert s.openai_base_url == "http://localhost:11434/v1" and s.port == 9999


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-dotenv\nDUBSTUDIO_OPENAI_MODEL=llama3.1\n")
    assert Settings().secret("openai_api_key") == "sk-dotenv"
    assert Settings().openai_model == "llama3.1"
    monkeypatch.setenv("DUBSTUDIO_OPENAI_MODEL", "other")
    assert Settings().openai_model == "other"


def test_keys_come_from_the_keychain_when_not_in_the_environment(
        keychain: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    keychain.set_password("dubstudio", "deepgram_api_key", "dg-keychain")
    assert Settings().secret("deepgram_api_key") == "dg-keychain"
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-env")
    assert Settings().secret("deepgram_api_key") == "dg-env"


def test_a_machine_without_a_keychain_still_works(no_keychain: None) -> None:
    s = Settings()
    assert s.openai_api_key is None
    token = api_token(s)
    path = s.data_dir / "api_token"
    assert path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token_location(s) == str(path)
    assert api_token(Settings()) == token  # stable across starts


def test_the_token_goes_to_the_keychain_where_there_is_one(keychain: MemoryKeyring) -> None:
    s = Settings()
    token = api_token(s)
    assert keychain.get_password("dubstudio", "api_token") == token
    assert not (s.data_dir / "api_token").exists()
    assert "keychain" in token_location(s)


def test_the_token_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUBSTUDIO_API_TOKEN", "my-token")
    s = Settings()
    assert api_token(s) == "my-token"
    assert check_bearer(s, "Bearer my-token") == "local"
    for header in (None, "", "Bearer", "Bearer wrong", "Basic my-token", "Bearer tökën"):
        with pytest.raises(AuthError):
            check_bearer(s, header)


def test_secrets_are_not_shown_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(Settings()) and "sk-very-secret" not in str(Settings().model_dump())
