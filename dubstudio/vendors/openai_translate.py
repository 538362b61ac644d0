"""Translation through any OpenAI-compatible chat-completions server (OpenAI, Ollama, LM Studio, vLLM).

All lines of a language go in batches with their neighbours as context and a length budget each; the
answer is JSON under a schema, validated (same ids, no empty line) and asked again a bounded number of
times when it is not. Servers that refuse `json_schema` get `json_object` instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from ..domain import Segment
from ..errors import PermanentVendorError, TranslatorNotConfigured, VendorError
from ..languages import NAMES
from .retry import call_with_retries, parse_retry_after

BATCH = 40
CONTEXT = 3
REASKS = 2

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"translations": {"type": "array", "items": {
        "type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
        "required": ["id", "text"], "additionalProperties": False}}},
    "required": ["translations"], "additionalProperties": False,
}

SHORTEN = (
    "You shorten one line of a video's dubbing script in {dst} (translated from {src}) so that it can be "
    "spoken in less time. Keep the meaning and the register; at most {max_chars} characters. "
    'Answer only JSON: {{"translations": [{{"id": "line", "text": "..."}}]}}.'
)

SYSTEM = (
    "You translate a video's dubbing script from {src} to {dst}. Translate every line, keeping its id. "
    "Each line must be speakable in about the same time as the original: stay within its max_chars. "
    "Use the context lines only to understand; do not translate them. Use the glossary's translations "
    "for its terms, and leave the do_not_translate terms as they are. "
    'Answer only JSON: {{"translations": [{{"id": "...", "text": "..."}}]}}.'
)


# What we ask the server to answer in, best first: servers that refuse one get the next.
FORMATS: list[dict[str, Any] | None] = [
    {"type": "json_schema", "json_schema": {"name": "translations", "strict": True, "schema": SCHEMA}},
    {"type": "json_object"},
    None,  # plain text that holds JSON (the prompt asks for it)
]


class OpenAITranslator:
    def __init__(self, api_key: str | None, base_url: str | None, model: str, timeout: float = 60.0,
                 retries: int = 3, glossary: dict[str, str] | None = None, keep: list[str] | None = None,
                 concurrency: int = 4) -> None:
        if not api_key and not base_url:
            raise TranslatorNotConfigured(
                "No translator is configured.",
                hint="Set OPENAI_API_KEY (or store it in the keychain), or OPENAI_BASE_URL for a local "
                "OpenAI-compatible server such as Ollama; or choose DUBSTUDIO_TRANSLATOR=manual.")
        # Local servers need no key, but the SDK insists on one. Retries happen in one place for every
        # vendor (retry.call_with_retries), so the SDK's own are off.
        self.client = openai.OpenAI(api_key=api_key or "not-needed", base_url=base_url or None,
                                    timeout=timeout, max_retries=0)
        self.retries = retries
        self.model = model
        self.glossary, self.keep, self.concurrency = glossary or {}, keep or [], max(1, concurrency)
        self._slots = threading.BoundedSemaphore(self.concurrency)  # per vendor: shared by every language
        # The glossary is part of the name: the cache must not serve a translation made without it.
        terms = json.dumps([sorted(self.glossary.items()), sorted(self.keep)], ensure_ascii=False)
        self.name = f"openai:{model}" + (f":{hashlib.sha256(terms.encode()).hexdigest()[:8]}" if terms != "[[], []]"
                                         else "")
        self._format_index = 0

    def translate(self, segments: list[Segment], source: str, target: str,
                  budgets: dict[str, int] | None = None) -> dict[str, str]:
        def one(b: int) -> dict[str, str]:
            batch = segments[b:b + BATCH]
            payload: dict[str, Any] = {
                "lines": [{"id": s.id, "text": s.text, "max_chars": (budgets or {}).get(s.id)} for s in batch],
                "context_before": [s.text for s in segments[max(0, b - CONTEXT):b]],
                "context_after": [s.text for s in segments[b + BATCH:b + BATCH + CONTEXT]],
            }
            if self.glossary:
                payload["glossary"] = self.glossary
            if self.keep:
                payload["do_not_translate"] = self.keep
            return self._batch(payload, [s.id for s in batch], source, target)

        out: dict[str, str] = {}
        with ThreadPoolExecutor(self.concurrency) as pool:  # batches are independent: not one after another
            for part in pool.map(one, range(0, len(segments), BATCH)):
                out.update(part)
        return out

    def shorten(self, text: str, translation: str, source: str, target: str, max_chars: int) -> str:
        src, dst = NAMES.get(source, source), NAMES.get(target, target)
        payload = {"lines": [{"id": "line", "text": translation, "max_chars": max_chars}], "original": text}
        messages: list[Any] = [{"role": "system", "content": SHORTEN.format(src=src, dst=dst, max_chars=max_chars)},
                               {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}]
        return self._ask_valid(messages, ["line"])["line"]

    def _batch(self, payload: dict[str, Any], ids: list[str], source: str, target: str) -> dict[str, str]:
        messages: list[Any] = [
            {"role": "system", "content": SYSTEM.format(src=NAMES.get(source, source), dst=NAMES.get(target, target))},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
        ]
        return self._ask_valid(messages, ids)

    def _ask_valid(self, messages: list[Any], ids: list[str]) -> dict[str, str]:
        """Ask until the answer is valid (same ids, no empty line), a bounded number of times."""
        problem = ""
        for _ in range(REASKS + 1):
            content = self._ask(messages)
            result, problem = _validate(content, ids)
            if result is not None:
                return result
            messages = [*messages, {"role": "assistant", "content": content or ""},
                        {"role": "user", "content": f"That answer was not valid: {problem}. Answer again, "
                         f"with exactly these ids in order: {ids}."}]
        raise VendorError(f"The translator gave no valid answer after {REASKS + 1} tries ({problem}).",
                          hint="Try another model (DUBSTUDIO_OPENAI_MODEL) or enter the translations by hand.")

    def _ask(self, messages: list[Any]) -> str:
        with self._slots:
            return call_with_retries(lambda: self._ask_once(messages), vendor="OpenAI", attempts=self.retries + 1)

    def _ask_once(self, messages: list[Any]) -> str:
        try:
            while True:
                try:
                    r = self._create(messages)
                    break
                except openai.BadRequestError as exc:
                    if self._format_index + 1 >= len(FORMATS) or "response_format" not in str(exc.message):
                        raise
                    self._format_index += 1  # the server does not do this format; remember it
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise PermanentVendorError(f"The translator refused the key ({exc.status_code}).",
                                       hint="Check OPENAI_API_KEY.") from exc
        except openai.BadRequestError as exc:
            raise PermanentVendorError(f"The translator refused the request: {exc.message}",
                                       hint="Check DUBSTUDIO_OPENAI_MODEL and OPENAI_BASE_URL.") from exc
        except openai.NotFoundError as exc:
            raise PermanentVendorError(f"The translator does not know model {self.model!r}.",
                                       hint="Set DUBSTUDIO_OPENAI_MODEL to a model the server has.") from exc
        except openai.APIStatusError as exc:
            raise VendorError(f"The translator failed ({exc.status_code}).",
                              retry_after=parse_retry_after(exc.response.headers)) from exc
        except (ValueError, openai.APIResponseValidationError) as exc:  # an answer cut short: unreadable JSON
            raise VendorError("The translator sent an answer that could not be read.",
                              hint="This is usually passing; it is retried.") from exc
        except openai.APIError as exc:  # timeouts and dropped connections
            raise VendorError(f"The translator could not be reached: {exc.message}",
                              hint="Check OPENAI_BASE_URL and that the server runs.") from exc
        return r.choices[0].message.content or ""

    def _create(self, messages: list[Any]) -> Any:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
        if (fmt := FORMATS[self._format_index]) is not None:
            kwargs["response_format"] = fmt
        return self.client.chat.completions.create(**kwargs)


def _validate(content: str, ids: list[str]) -> tuple[dict[str, str] | None, str]:
    try:
        start, end = content.find("{"), content.rfind("}")  # plain-text answers may wrap the JSON in prose
        data = json.loads(content[start:end + 1] if start >= 0 else content)
        items = data["translations"]
        got = {str(i["id"]): str(i["text"]).strip() for i in items}
    except (ValueError, KeyError, TypeError):
        return None, "not JSON of the asked shape"
    if sorted(got) != sorted(ids):
        return None, f"ids differ (missing {sorted(set(ids) - set(got))}, extra {sorted(set(got) - set(ids))})"
    empty = [i for i, t in got.items() if not t]
    if empty:
        return None, f"empty lines {empty}"
    return got, ""
