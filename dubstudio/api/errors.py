"""Every API error is {"error": {"code", "message", "details"}}; nothing else, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..errors import DubError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, details: dict[str, object] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details or {}}}, status_code=status)


async def _dub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DubError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                for e in exc.errors()]
    first = problems[0] if problems else {"field": "", "problem": "invalid"}
    return error_response(422, "invalid_request", f"{first['field']}: {first['problem']}", {"problems": problems})


def install(app: FastAPI) -> None:
    app.add_exception_handler(DubError, _dub_error)
    app.add_exception_handler(RequestValidationError, _validation)
