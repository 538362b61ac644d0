"""What a process needs to do work, built once from settings: records, files and the queue.

The server, a worker and the CLI each build one; nothing here runs at import time.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .auth.local import LOCAL_USER_ID
from .config import Settings
from .db import migrate
from .db.models import User
from .db.session import make_engine, make_sessionmaker
from .storage.local import LocalStorage


@dataclass
class Database:
    """An engine bound to the event loop that made it; make one per loop (the server's, a task's)."""

    engine: AsyncEngine
    session: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.session = make_sessionmaker(self.engine)

    @classmethod
    def connect(cls, settings: Settings) -> Database:
        return cls(make_engine(settings.db_url))

    async def close(self) -> None:
        await self.engine.dispose()


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
