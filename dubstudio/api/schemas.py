"""Pydantic shapes at the HTTP edge only (they document /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


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
    voice: str | None = None


class SegmentList(BaseModel):
    segments: list[SegmentOut]


class EditLines(BaseModel):
    translations: dict[str, str] = Field({}, description="Translations typed by hand, by segment id, for the "
                                         "language in the path.")
    texts: dict[str, str] = Field({}, description="Corrected source text by segment id (every language follows).")
    speakers: dict[str, str] = Field({}, description="Who says a line, by segment id, e.g. `S2` (every language "
                                     "follows: the line takes that speaker's voice).")
    voices: dict[str, str] = Field({}, description="The voice of a speaker in this language, by speaker, e.g. "
                                   '`{"S1": "es+m3"}` (a voice id of the job\'s voice engine).')


class RegenerateLine(BaseModel):
    translation: str = Field(min_length=1, max_length=5000, description="The line's new translation.")


class LinePreview(BaseModel):
    segment_id: str
    start: float = Field(description="Seconds: the stretch of the language's master that was remade.")
    end: float
    row: dict[str, Any] = Field(description="The line as the manifest will give it.")


class RegenerateOut(BaseModel):
    job: JobOut
    preview: LinePreview | None = Field(description="Null when the language was not finished (or a run was "
                                        "writing it): the queued run then makes it all.")


class RetryRequest(BaseModel):
    language: str | None = None


JobStatus = Literal["queued", "running", "awaiting_input", "done", "failed", "cancelled", "deleted"]


class JobList(BaseModel):
    jobs: list[JobOut]
    limit: int
    offset: int
    next_offset: int | None = Field(None, description="The offset of the next page; null on the last page.")


class UploadFile(BaseModel):
    kind: Literal["voice", "background", "source"] = Field(
        description="`source`: one file with speech and background; `voice` (+ `background`): stems.")
    filename: str = Field(min_length=1, max_length=4096, description="Shown only; never used as a path.")
    content_type: str = Field("", max_length=255, description="Ignored: the type is sniffed from the content.")
    size: int = Field(gt=0, description="Exact size in bytes; a different number of bytes is refused.")


class UploadsRequest(BaseModel):
    files: list[UploadFile] = Field(min_length=1, max_length=3)


class UploadTarget(BaseModel):
    id: str
    kind: str
    url: str = Field(description="Send the file's bytes here, as the request body.")
    method: str
    headers: dict[str, str]
    expires_at: str


class UploadsOut(BaseModel):
    uploads: list[UploadTarget]


class UploadOut(BaseModel):
    id: str
    kind: str
    status: str
    size: int
    sha256: str | None
    content_type: str


class JobFromUploads(BaseModel):
    uploads: dict[Literal["voice", "background", "source"], str] = Field(
        description='Upload ids by kind: `{"source": id}` or `{"voice": id, "background": id}`.')
    source_language: str = Field("en", description="A language code, or `auto`.")
    target_languages: list[str] = Field(min_length=1, max_length=20)
    stt: str | None = Field(None, description="Speech-to-text engine for this job.")
    translator: str | None = Field(None, description="Translator for this job.")
    tts: str | None = Field(None, description="Voice engine for this job.")


class DownloadRequest(BaseModel):
    language: str | None = Field(None, description="The language of a per-language file; null for the job's "
                                 "own (manifest, source captions, all-languages video).")
    kind: str = Field(description="Per language: `audio` (AAC), `audio_wav`, `voice_wav`, `captions_srt`, "
                      "`captions_vtt`, `video`; the job's own: `manifest`, `captions_srt`, `captions_vtt`, `video_all` "
                      "(as the job lists them).")


class DownloadOut(BaseModel):
    url: str = Field(description="Works once, until `expires_at`; honours a Range header on that use.")
    method: str
    expires_at: str
    language: str | None
    kind: str
    filename: str
    bytes: int
    sha256: str
