"""A fake OpenAI-compatible server: POST /v1/chat/completions as the SDK calls it.

It "translates" word by word with a small dictionary (unknown words pass through), so answers are
deterministic and speakable; it answers in the shape OpenAI documents for chat completions, and counts
calls. `fail_next` queues faults: an HTTP status (e.g. 401, 429, 500) or "malformed".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

WORDS = {
    "es": {"and": "y", "so": "así", "my": "mis", "fellow": "queridos", "americans": "americanos", "ask": "pregunten",
           "not": "no", "what": "qué", "your": "su", "country": "país", "can": "puede", "do": "hacer", "for": "por",
           "you": "ustedes", "the": "el", "a": "un", "is": "es", "of": "de", "to": "a", "in": "en", "it": "lo",
           "this": "esto", "that": "eso", "we": "nosotros", "i": "yo", "hello": "hola", "world": "mundo"},
    "fr": {"and": "et", "so": "alors", "my": "mes", "ask": "demandez", "not": "pas", "what": "ce que",
           "your": "votre", "country": "pays", "can": "peut", "do": "faire", "for": "pour", "you": "vous"},
}


def fake_translate(text: str, target: str, glossary: dict[str, str] | None = None) -> str:
    for term, translation in (glossary or {}).items():  # glossary terms first, kept from the word table
        text = text.replace(term, translation.upper())
    table = WORDS.get(target, {})
    return re.sub(r"[A-Za-z']+", lambda m: m[0] if m[0].isupper() and len(m[0]) > 1 else
                  table.get(m[0].lower(), m[0]), text).replace("\u0000", "")


@dataclass
class FakeOpenAI:
    calls: int = 0
    shorten_calls: int = 0
    fail_next: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # response_format types answered with 400, like some servers

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.get("/v1/models")
        async def models(request: Request) -> JSONResponse:
            if request.headers.get("authorization", "") != "Bearer sk-test":
                return JSONResponse({"error": {"message": "Incorrect API key provided.",
                                               "type": "invalid_request_error", "code": "invalid_api_key"}}, 401)
            return JSONResponse({"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 1700000000, "owned_by": "fake"}]})

        @api.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            self.calls += 1
            body = await request.json()
            self.requests.append(body)
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"error": {"message": "no key", "type": "invalid_request_error"}}, 401)
            if self.fail_next:
                fault = self.fail_next.pop(0)
                if fault == "malformed":
                    return JSONResponse(_completion(body, "this is not json"))
                return JSONResponse({"error": {"message": f"injected {fault}", "type": "server_error",
                                               "code": None}}, status_code=int(fault),
                                    headers={"retry-after": "0"} if fault == 429 else None)
            fmt = (body.get("response_format") or {}).get("type", "text")
            if fmt in self.refuse:
                return JSONResponse({"error": {"message": f"Invalid parameter: 'response_format' of type '{fmt}' is "
                                               "not supported with this model.", "type": "invalid_request_error",
                                               "param": "response_format", "code": None}}, 400)
            system = body["messages"][0]["content"]
            user = json.loads(next(m["content"] for m in body["messages"] if m["role"] == "user"))
            if system.startswith("You shorten"):  # drop words from the end until the line fits
                self.shorten_calls += 1
                line = user["lines"][0]
                words = line["text"].split()
                while len(words) > 1 and len(" ".join(words)) > line["max_chars"]:
                    words.pop()
                out = {"translations": [{"id": line["id"], "text": " ".join(words)}]}
                return JSONResponse(_completion(body, json.dumps(out, ensure_ascii=False)))
            target = "es" if "to Spanish" in system else "fr" if "to French" in system else "xx"
            glossary = user.get("glossary", {})
            out = {"translations": [{"id": line["id"], "text": fake_translate(line["text"], target, glossary)}
                                    for line in user["lines"]]}
            text = json.dumps(out, ensure_ascii=False)
            if fmt == "text":  # no JSON mode: the answer comes wrapped in prose, as chat models do
                text = f"Here are the translations:\n{text}\nHope this helps."
            return JSONResponse(_completion(body, text))

        return api


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
