"""The error tree. Every failure a user can cause or fix is one of these, with a stable code.

    DubError (code, message, hint, status)
    ├── BadInput (400/422)           the request or a file is wrong
    │   ├── NotMedia                 no audio stream could be decoded
    │   ├── EmptyFile                zero bytes
    │   ├── UnknownLanguage          a code we do not know
    │   ├── NoSpeech                 nothing to dub was found
    │   └── Conflict (409)           not now: the job's state does not allow it
    ├── ConfigError (400)            a setting is missing or wrong
    │   └── TranslatorNotConfigured
    ├── StorageError (500/507)       the data folder cannot be used
    │   └── DataDirUnwritable
    ├── AwaitingTranslation (409)    a language waits for lines translated by hand
    ├── AuthError (401)              no or a wrong token
    ├── NotFound (404)               it does not exist (or is not yours)
    ├── JobStopped                   the job was cancelled or deleted while it ran
    └── VendorError (502)            an engine failed; carries retry_after
        └── PermanentVendorError     retrying cannot help (401, 403, 400, quota)

The API renders them as {"error": {"code", "message", "details"}}; the CLI prints one line.
"""

from __future__ import annotations

from typing import Any


class DubError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, *, hint: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()

    def to_dict(self) -> dict[str, Any]:
        details = dict(self.details)
        if self.hint:
            details["hint"] = self.hint
        return {"error": {"code": self.code, "message": str(self), "details": details}}


class BadInput(DubError):
    code = "bad_input"
    status = 422


class NotMedia(BadInput):
    code = "not_media"


class EmptyFile(BadInput):
    code = "empty_file"


class UnknownLanguage(BadInput):
    code = "unknown_language"


class NoSpeech(BadInput):
    code = "no_speech"


class Conflict(BadInput):
    code = "conflict"
    status = 409


class ConfigError(DubError):
    code = "config_error"
    status = 400


class TranslatorNotConfigured(ConfigError):
    code = "translator_not_configured"


class StorageError(DubError):
    code = "storage_error"
    status = 500


class DataDirUnwritable(StorageError):
    code = "data_dir_unwritable"
    status = 507


class AwaitingTranslation(DubError):
    code = "awaiting_translation"
    status = 409


class AuthError(DubError):
    code = "unauthorized"
    status = 401


class NotFound(DubError):
    code = "not_found"
    status = 404


class JobStopped(DubError):
    code = "stopped"
    status = 409


class VendorError(DubError):
    code = "vendor_error"
    status = 502

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentVendorError(VendorError):
    code = "vendor_permanent_error"
