"""The translator against a fake OpenAI-compatible server, driven by the official SDK over loopback."""

from __future__ import annotations

import json
import time

import pytest

from dubstudio.domain import Segment
from dubstudio.errors import PermanentVendorError
from dubstudio.vendors.openai_translate import OpenAITranslator
from tests.fakes.openai_server import FakeOpenAI

LINES = [Segment(f"seg-{n:04d}", n, n + 0.9, text) for n, text in
         enumerate(["And so my fellow Americans", "ask not what your country can do for you"], 1)]


@pytest.fixture
def fake(fake_openai_server: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    fake, _ = fake_openai_server
    fake.fail_next.clear()
    fake.refuse = set()
    return fake


def translator(fake_openai_server: tuple[FakeOpenAI, str], **kw: object) -> OpenAITranslator:
    return OpenAITranslator("sk-test", fake_openai_server[1], "gpt-4o-mini", timeout=5, retries=3, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("refused", [set(), {"json_schema"}, {"json_schema", "json_object"}])
def test_servers_that_refuse_a_json_mode_get_the_next(fake: FakeOpenAI, fake_openai_server: tuple[FakeOpenAI, str],
                                                      refused: set[str]) -> None:
    fake.refuse = refused
    out = translator(fake_openai_server).translate(LINES, "en", "es")
    assert out == {"seg-0001": "y así mis queridos americanos",
                   "seg-0002": "pregunten no qué su país puede hacer por ustedes"}


def test_an_invalid_answer_is_asked_again(fake: FakeOpenAI, fake_openai_server: tuple[FakeOpenAI, str]) -> None:
    before = fake.calls
    fake.fail_next.append("malformed")
    assert len(translator(fake_openai_server).translate(LINES, "en", "es")) == 2
    assert fake.calls - before == 2


def test_transient_failures_are_retried(fake: FakeOpenAI, fake_openai_server: tuple[FakeOpenAI, str]) -> None:
    fake.fail_next.extend([429, 500])
    assert len(translator(fake_openai_server).translate(LINES, "en", "es")) == 2


def test_a_refused_key_fails_at_once_naming_the_setting(fake: FakeOpenAI,
                                                        fake_openai_server: tuple[FakeOpenAI, str]) -> None:
    before, started = fake.calls, time.monotonic()
    fake.fail_next.append(401)
    with pytest.raises(PermanentVendorError, match="OPENAI_API_KEY"):
        translator(fake_openai_server).translate(LINES, "en", "es")
    assert fake.calls - before == 1 and time.monotonic() - started < 5


def test_the_glossary_and_kept_terms_reach_the_model(fake: FakeOpenAI,
                                                      fake_openai_server: tuple[FakeOpenAI, str]) -> None:
    t = translator(fake_openai_server, glossary={"fellow Americans": "compatriotas"}, keep=["Kennedy"])
    out = t.translate(LINES, "en", "es")
    assert "COMPATRIOTAS" in out["seg-0001"]
    payload = json.loads(fake.requests[-1]["messages"][1]["content"])
    assert payload["glossary"] == {"fellow Americans": "compatriotas"} and payload["do_not_translate"] == ["Kennedy"]
    assert t.name != translator(fake_openai_server).name  # a glossary change is not served from the cache
