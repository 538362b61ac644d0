"""What a process needs to do work, built once from settings: records, files and the queue.

The server, a worker and the CLI each build one; nothing here runs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .config import Settings
from .db import migrate
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


def prepare(settings: Settings) -> LocalStorage:
    """Check the data folder and bring the schema up to date; call before an event loop starts."""
    storage = LocalStorage(settings.storage_dir)
    storage.ensure_writable()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    return storage
