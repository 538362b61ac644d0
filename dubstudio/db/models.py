"""Records of the studio: users, uploads, jobs and their per-language work, artifacts and events.

Plain SQLAlchemy 2 declarative models that work on SQLite (aiosqlite) and PostgreSQL (asyncpg).

* Ids are 32-character uuid4 hex strings made by a Python-side default (``new_id``); events use an
  autoincrement integer so they sort in insertion order.
* Timestamps are timezone-aware UTC datetimes in and out (``UTCDateTime``). SQLite has no time zone
  type, so it stores them naive, in UTC, and they come back with ``tzinfo=UTC`` attached.
* Portable column types only (``JSON``, not ``JSONB``). JSON columns do not track in-place
  mutation: assign a new dict (``job.options = {**job.options, "x": 1}``) to change one.
* Status values are plain strings; the allowed ones are listed in the ``*_STATUSES`` tuples below.
* Children are deleted by the database (``ON DELETE CASCADE``, with ``passive_deletes``), so a core
  ``DELETE FROM jobs`` cleans up as well as ``session.delete(job)`` does. SQLite enforces this only
  with ``PRAGMA foreign_keys=ON``, which ``dubstudio.db.session.make_engine`` sets on every
  connection.
* Relationships load lazily on access, which under asyncio needs ``selectinload(...)`` in the
  query or ``await obj.awaitable_attrs.<name>``.

Any change here needs a new migration in ``migrations/versions`` (a test compares the two).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

UPLOAD_KINDS = ("voice", "background", "source")
UPLOAD_STATUSES = ("pending", "uploaded", "consumed", "deleted")
JOB_STATUSES = ("queued", "running", "awaiting_input", "done", "failed", "cancelled", "deleted")
TASK_STATUSES = ("queued", "running", "awaiting_translation", "done", "failed", "cancelled")
EVENT_UNITS = ("seconds", "characters", "tokens")

# Named constraints: Alembic's batch mode (SQLite) can only drop or alter what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column sizes (PostgreSQL enforces them; SQLite ignores them).
ID = String(32)
SHA256 = String(64)
STATUS = String(16)
LANGUAGE = String(16)
KIND = String(32)
NAME = String(255)
PATH = String(1024)
CODE = String(64)


def new_id() -> str:
    """A new record id: uuid4 as 32 lowercase hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    Aware values are converted to UTC before they are stored; naive values are taken to be UTC
    already. Values read back without a time zone (SQLite) get ``tzinfo=UTC``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite's DATETIME keeps no offset: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _id_column() -> Mapped[str]:
    return mapped_column(ID, primary_key=True, default=new_id)


def _created_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _updated_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = _id_column()
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    created_at: Mapped[datetime] = _created_at()

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r})"


class Upload(Base):
    """A file a user sent (or is sending): a voice sample, a background track or a source."""

    __tablename__ = "uploads"

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(KIND)  # UPLOAD_KINDS
    filename: Mapped[str] = mapped_column(NAME)
    content_type: Mapped[str] = mapped_column(NAME, default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(SHA256)  # unknown while the upload is pending
    path: Mapped[str] = mapped_column(PATH)  # storage key
    status: Mapped[str] = mapped_column(STATUS, default="pending")  # UPLOAD_STATUSES
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"Upload(id={self.id!r}, kind={self.kind!r}, status={self.status!r})"


class Job(Base):
    """One dubbing request: a source in one language, dubbed into one or more others."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_user_id_created_at", "user_id", "created_at"),)  # a user's list, newest first

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(STATUS, default="queued", index=True)  # JOB_STATUSES
    source_language: Mapped[str] = mapped_column(LANGUAGE)
    source_filename: Mapped[str] = mapped_column(NAME)
    source_path: Mapped[str] = mapped_column(PATH)  # storage key
    background_path: Mapped[str | None] = mapped_column(PATH)  # storage key
    source_sha256: Mapped[str] = mapped_column(SHA256)
    duration: Mapped[float | None] = mapped_column(Float)  # seconds
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stage: Mapped[str | None] = mapped_column(KIND)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    error_code: Mapped[str | None] = mapped_column(CODE)
    error_message: Mapped[str | None] = mapped_column(Text)
    cost_total: Mapped[float] = mapped_column(Float, default=0.0)
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = _updated_at()
    finished_at: Mapped[datetime | None] = mapped_column()

    languages: Mapped[list[LanguageTask]] = relationship(
        back_populates="job", order_by="LanguageTask.language",
        cascade="all, delete-orphan", passive_deletes=True)
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="job", order_by="[Artifact.created_at, Artifact.id]",
        cascade="all, delete-orphan", passive_deletes=True)
    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job", order_by="JobEvent.id",
        cascade="all, delete-orphan", passive_deletes=True)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, status={self.status!r}, stage={self.stage!r})"


class LanguageTask(Base):
    """The work for one target language of a job."""

    __tablename__ = "language_tasks"
    __table_args__ = (UniqueConstraint("job_id", "language"),)

    id: Mapped[str] = _id_column()
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(LANGUAGE)
    status: Mapped[str] = mapped_column(STATUS, default="queued")  # TASK_STATUSES
    stage: Mapped[str | None] = mapped_column(KIND)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    error_code: Mapped[str | None] = mapped_column(CODE)
    error_message: Mapped[str | None] = mapped_column(Text)
    cost_total: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()

    job: Mapped[Job] = relationship(back_populates="languages")
    segments: Mapped[list[Segment]] = relationship(
        back_populates="task", order_by="Segment.idx",
        cascade="all, delete-orphan", passive_deletes=True)

    def __repr__(self) -> str:
        return f"LanguageTask(job_id={self.job_id!r}, language={self.language!r}, status={self.status!r})"


class Segment(Base):
    """One line of a language task: source timing and text, its translation and where the dub lands."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("task_id", "idx"),)

    id: Mapped[str] = _id_column()
    task_id: Mapped[str] = mapped_column(ForeignKey("language_tasks.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    segment_key: Mapped[str] = mapped_column(CODE)  # the pipeline's id, e.g. 'seg-0001'
    speaker: Mapped[str] = mapped_column(CODE, default="S1")
    source_start: Mapped[float] = mapped_column(Float)
    source_end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    translation: Mapped[str | None] = mapped_column(Text)
    dub_start: Mapped[float | None] = mapped_column(Float)
    dub_end: Mapped[float | None] = mapped_column(Float)
    stretch: Mapped[float] = mapped_column(Float, default=1.0)
    overflow: Mapped[float] = mapped_column(Float, default=0.0)
    voice: Mapped[str | None] = mapped_column(NAME)
    updated_at: Mapped[datetime] = _updated_at()

    task: Mapped[LanguageTask] = relationship(back_populates="segments")

    def __repr__(self) -> str:
        return f"Segment(task_id={self.task_id!r}, idx={self.idx!r}, key={self.segment_key!r})"


class Artifact(Base):
    """A file a job produced: dubbed audio, captions, a manifest, a cloned voice..."""

    __tablename__ = "artifacts"

    id: Mapped[str] = _id_column()
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    language: Mapped[str | None] = mapped_column(LANGUAGE)
    kind: Mapped[str] = mapped_column(KIND)  # 'audio', 'captions_srt', 'manifest', 'voice', ...
    path: Mapped[str] = mapped_column(PATH)  # storage key
    sha256: Mapped[str] = mapped_column(SHA256)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _created_at()

    job: Mapped[Job] = relationship(back_populates="artifacts")

    def __repr__(self) -> str:
        return f"Artifact(job_id={self.job_id!r}, language={self.language!r}, kind={self.kind!r})"


class JobEvent(Base):
    """Something that happened to a job: a stage started or finished, an error, a paid vendor call."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    language: Mapped[str | None] = mapped_column(LANGUAGE)
    kind: Mapped[str] = mapped_column(KIND)  # 'stage_started', 'stage_done', 'error', 'vendor_call', ...
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    vendor: Mapped[str | None] = mapped_column(KIND)
    units: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(STATUS)  # EVENT_UNITS
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = _created_at()

    job: Mapped[Job] = relationship(back_populates="events")

    def __repr__(self) -> str:
        return f"JobEvent(id={self.id!r}, job_id={self.job_id!r}, kind={self.kind!r})"


class UsedNonce(Base):
    """The nonce of a single-use signed URL that was used, kept until the URL has expired."""

    __tablename__ = "used_nonces"

    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


__all__ = [
    "EVENT_UNITS", "JOB_STATUSES", "TASK_STATUSES", "UPLOAD_KINDS", "UPLOAD_STATUSES",
    "Artifact", "Base", "Job", "JobEvent", "LanguageTask", "Segment", "UTCDateTime", "Upload", "UsedNonce", "User",
    "new_id", "utcnow",
]
