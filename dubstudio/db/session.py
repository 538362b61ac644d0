"""Engines and sessions for the records database (SQLite through aiosqlite, or PostgreSQL).

    engine = make_engine(settings.db_url)
    Session = make_sessionmaker(engine)
    async with Session() as session, session.begin():
        session.add(job)

Create the schema with ``dubstudio.db.migrate.upgrade`` first, never with ``metadata.create_all``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers do not block the writer (API and workers share the file)
    "PRAGMA synchronous=NORMAL",  # safe with WAL; a power cut can lose the last commits, not corrupt
    "PRAGMA foreign_keys=ON",  # off by default in SQLite: needed for ON DELETE CASCADE
    "PRAGMA busy_timeout=5000",  # wait up to 5 s for another connection's write lock
)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    database = u.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or u.query.get("uri") in ("true", "1"):
        return None
    return Path(database).expanduser()


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(url: str | URL, *, connect_args: dict[str, Any] | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///...`` or e.g. ``postgresql+asyncpg://...``).

    SQLite: the parent folder is created, connections to a file are pooled and wait up to 30 s for it,
    and every new connection gets WAL journaling, ``synchronous=NORMAL``, foreign keys on and a 5 s busy timeout.
    Others: ``pool_pre_ping`` so connections a server dropped are replaced.
    ``connect_args`` and other keyword arguments go to ``create_async_engine``.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = sqlite_path(u)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if "poolclass" not in kwargs and path is not None:
            # Reuse connections (SQLAlchemy's default for aiosqlite files is a new connection, thread and
            # pragmas per session). Two: each is a thread, and more threads contend for the GIL (bench/api.py:
            # 16 clients listing jobs, 1.7x the requests/s of the default, 1.3x of five). SQLite writes one at
            # a time anyway; so hold no session across long work.
            kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=2, max_overflow=0)
        engine = create_async_engine(u, connect_args={"timeout": 30, **(connect_args or {})}, **kwargs)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(u, connect_args=dict(connect_args or {}), **kwargs)


def make_sync_engine(url: str | URL) -> Engine:
    """A sync engine on the same SQLite file as an async one (``Database.read``), with the same pragmas."""
    u = make_url(url)
    engine = create_engine(u.set(drivername="sqlite"), connect_args={"timeout": 30})
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)
