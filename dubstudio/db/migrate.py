"""Bring the records database to the newest schema with Alembic, without an alembic.ini on disk.

    from dubstudio.db.migrate import upgrade
    upgrade(settings.db_url)                          # before the event loop starts, or in a thread
    await asyncio.to_thread(upgrade, settings.db_url)  # from async code (or: await upgrade_async(...))

``upgrade`` is synchronous: the migration environment runs its own event loop (``asyncio.run``),
which cannot be started on a thread that already runs one, so ``upgrade`` refuses to run there.

It is idempotent (a database at head is left alone) and safe to run from several processes at
once: the migration environment serializes runs (SQLite: one ``BEGIN IMMEDIATE`` transaction;
PostgreSQL: an advisory lock). Should a race still surface ("table already exists", "database is
locked"), the version is checked again and the upgrade retried. Within one process, runs are
serialized by a lock, as Alembic's ``context``/``op`` are process-wide.

A frozen (PyInstaller) build must ship the ``migrations`` folder as data, ``.py`` files included:
Alembic reads the scripts from ``MIGRATIONS_DIR``.

To write a new migration, from the project root (a throwaway SQLite database at head as reference)::

    .venv/bin/python -m dubstudio.db.migrate revision "add x to jobs"
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from dubstudio.db.session import make_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Errors that another process migrating the same database at the same moment can cause.
_RACE_MARKERS = ("already exists", "database is locked", "duplicate key", "deadlock detected")
_process_lock = threading.Lock()


def alembic_config(url: str, *, connect_args: dict[str, Any] | None = None) -> Config:
    """An Alembic Config built in code: the migrations folder, and the URL passed as an attribute
    (not as the ``sqlalchemy.url`` option, whose ``%`` interpolation would mangle encoded passwords)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    if connect_args:
        cfg.attributes["connect_args"] = dict(connect_args)
    return cfg


def head_revision() -> str | None:
    """The newest revision among the migration scripts."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _ensure_no_running_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"dubstudio.db.migrate.{name}() cannot run on a thread with a running event loop "
        f"(it starts its own); use `await asyncio.to_thread({name}, url)` instead")


async def _current_heads(url: str, connect_args: dict[str, Any] | None) -> tuple[str, ...]:
    engine = make_engine(url, connect_args=connect_args, poolclass=pool.NullPool)

    def heads(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(heads)
    finally:
        await engine.dispose()


def current_revision(url: str, *, connect_args: dict[str, Any] | None = None) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database. Synchronous,
    with the same event-loop rule as ``upgrade``."""
    _ensure_no_running_loop("current_revision")
    heads = asyncio.run(_current_heads(url, connect_args))
    return heads[0] if heads else None


def _is_race(exc: DBAPIError) -> bool:
    message = str(exc).lower()
    return any(marker in message for marker in _RACE_MARKERS)


def upgrade(url: str, *, connect_args: dict[str, Any] | None = None, revision: str = "head",
            attempts: int = 5) -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest). Idempotent.

    ``connect_args`` go to the driver (e.g. ``{"server_settings": {"search_path": "x"}}`` for
    asyncpg). Must not be called on a thread with a running event loop (see the module doc).
    """
    _ensure_no_running_loop("upgrade")
    cfg = alembic_config(url, connect_args=connect_args)
    with _process_lock:
        for attempt in range(1, attempts + 1):
            try:
                command.upgrade(cfg, revision)
                return
            except DBAPIError as exc:
                if attempt == attempts or not _is_race(exc):
                    raise
                log.warning("database migration collided with another process (attempt %d/%d): %s",
                            attempt, attempts, exc.orig)
            time.sleep(0.2 * attempt)
            if revision == "head":
                with contextlib.suppress(DBAPIError):
                    if asyncio.run(_current_heads(url, connect_args)) == (head_revision(),):
                        return


async def upgrade_async(url: str, *, connect_args: dict[str, Any] | None = None, revision: str = "head") -> None:
    """``upgrade`` for async code: runs it on a worker thread."""
    await asyncio.to_thread(upgrade, url, connect_args=connect_args, revision=revision)


def _revision(message: str) -> None:
    """Autogenerate a migration script by comparing the models with a fresh database at head."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'reference.db'}"
        upgrade(url)
        cfg = alembic_config(url)
        cfg.set_main_option("file_template", "%%(rev)s")
        number = len(list(ScriptDirectory.from_config(cfg).walk_revisions())) + 1
        slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}_{slug}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "revision":
        _revision(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "upgrade":
        upgrade(sys.argv[2])
    else:
        sys.exit("usage: python -m dubstudio.db.migrate revision MESSAGE | upgrade URL")
