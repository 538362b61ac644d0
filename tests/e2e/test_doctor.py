"""`dubstudio doctor` against the fake vendors, with good keys and bad ones."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI


def doctor(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "dubstudio", "doctor"], env=full, capture_output=True, text=True,
                          timeout=120)


def test_good_keys(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> None:
    out = doctor()
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("ok") for line in lines)
    assert "environment (DEEPGRAM_API_KEY)" in out.stdout and "environment (OPENAI_API_KEY)" in out.stdout
    assert "dg-test-key" not in out.stdout + out.stderr and "sk-test" not in out.stdout + out.stderr


@pytest.mark.parametrize(("variable", "named"), [("DEEPGRAM_API_KEY", "DEEPGRAM_API_KEY"),
                                                  ("OPENAI_API_KEY", "OPENAI_API_KEY")])
def test_a_bad_key_fails_and_names_the_setting(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI,
                                               variable: str, named: str) -> None:
    out = doctor(**{variable: "wrong-key"})
    assert out.returncode == 1
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
    assert failed and all(named in line for line in failed), out.stdout
    assert "wrong-key" not in out.stdout + out.stderr


def test_the_offline_engines_need_no_key(fake_openai: FakeOpenAI) -> None:
    out = doctor()
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("none needed") == 2


def test_a_manual_translator_with_no_key_at_all_is_fine() -> None:
    out = doctor(DUBSTUDIO_TRANSLATOR="manual")  # the offline engines and lines typed by hand: nothing to call
    assert out.returncode == 0, out.stdout + out.stderr
    assert "typed by hand" in out.stdout and "FAIL" not in out.stdout
