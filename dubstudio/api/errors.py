"""Every API error is {"error": {"code", "message", "details"}}; nothing else, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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


async def _http(request: Request, exc: Exception) -> Response:
    """FastAPI's and Starlette's own refusals (a body that does not parse, too many form fields) in our
    shape under /api/; the UI's pages keep the framework's."""
    assert isinstance(exc, StarletteHTTPException)
    if not request.url.path.startswith("/api/"):
        return await http_exception_handler(request, exc)
    code = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
            413: "too_large"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": {"code": code, "message": str(exc.detail), "details": {}}},
                        status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DubError, _dub_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
