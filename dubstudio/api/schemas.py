"""Pydantic shapes at the HTTP edge only (they document /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    version: str


class Problem(BaseModel):
    code: str | None
    message: str | None


class LanguageOut(BaseModel):
    status: str
    stage: str | None
    progress: float
    cost: float
    error: Problem | None


class Cost(BaseModel):
    currency: str
    total: float


class Estimate(BaseModel):
    currency: str
    total: float
    transcription: float
    per_language: float
    assumes: dict[str, float]


class ArtifactOut(BaseModel):
    language: str | None
    kind: str
    path: str
    sha256: str
    bytes: int


class JobOut(BaseModel):
    id: str
    status: str
    stage: str | None
    progress: float
    source_language: str
    source_filename: str
    duration: float | None
    created_at: str
    finished_at: str | None
    error: Problem | None
    cost: Cost
    languages: dict[str, LanguageOut]
    artifacts: list[ArtifactOut] = []


class JobList(BaseModel):
    jobs: list[JobOut]
    limit: int
    offset: int


class EventOut(BaseModel):
    id: int
    language: str | None
    kind: str
    message: str
    data: dict[str, Any]
    created_at: str


class EventList(BaseModel):
    events: list[EventOut]


class SegmentOut(BaseModel):
    id: str
    speaker: str
    source_start: float
    source_end: float
    text: str
    translation: str
    edited: bool
    dub_start: float | None = None
    dub_end: float | None = None
    stretch: float | None = None
    overflow: float | None = None
    rate: float | None = None


class SegmentList(BaseModel):
    segments: list[SegmentOut]


class EditLines(BaseModel):
    translations: dict[str, str] = {}  # by segment id, for the language in the path
    texts: dict[str, str] = {}  # corrected source text by segment id (every language follows)


class RetryRequest(BaseModel):
    language: str | None = None
