"""What a process needs to do work, built once from settings: records, files and the queue.

The server, a worker and the CLI each build one; nothing here runs at import time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .auth.local import LOCAL_USER_ID
from .config import Settings
from .db import migrate
from .db.models import User
from .db.session import make_engine, make_sessionmaker, make_sync_engine, sqlite_path
from .storage.local import LocalStorage

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Database:
    """An engine bound to the event loop that made it; make one per loop (the server's, a task's)."""

    engine: AsyncEngine
    session: async_sessionmaker[AsyncSession] = field(init=False)
    _reader: Engine | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.session = make_sessionmaker(self.engine)
        if sqlite_path(self.engine.url) is not None:  # a file (an in-memory database is per connection)
            self._reader = make_sync_engine(self.engine.url)

    @classmethod
    def connect(cls, settings: Settings) -> Database:
        return cls(make_engine(settings.db_url))

    async def read(self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`query(connection, ...)`: a short read, written once for both backends with a sync connection.
        SQLite: run inline on the event loop through the sync driver. A page of rows takes well under a
        millisecond and WAL readers never wait for the writer, while aiosqlite costs two thread switches
        per driver call (a list of jobs made ~50 context switches and half its CPU time; bench/api.py).
        Others (asyncpg): through the async driver, with `run_sync`."""
        if self._reader is not None:
            with self._reader.connect() as conn:
                return query(conn, *args, **kwargs)
        async with self.engine.connect() as aconn:
            return await aconn.run_sync(query, *args, **kwargs)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()


async def _ensure_local_user(settings: Settings) -> None:
    db = Database.connect(settings)
    try:
        async with db.session() as s, s.begin():
            if await s.get(User, LOCAL_USER_ID) is None:
                s.add(User(id=LOCAL_USER_ID, name="Local user"))
    finally:
        await db.close()


def prepare(settings: Settings) -> LocalStorage:
    """Check the data folder, bring the schema up to date and make the local user. Alembic and this
    run their own event loops, so call it where none runs (before one starts, or on a thread)."""
    storage = LocalStorage(settings.storage_dir)
    storage.ensure_writable()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    asyncio.run(_ensure_local_user(settings))
    return storage


def prepare_off_loop(settings: Settings) -> LocalStorage:
    """prepare() from anywhere, including inside a running event loop (it blocks until done)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(prepare, settings).result()
