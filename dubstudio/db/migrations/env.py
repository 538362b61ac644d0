"""Alembic environment for the records database (adapted from Alembic's ``async`` template).

Run through ``dubstudio.db.migrate`` (no alembic.ini is needed or read). The database URL comes
from ``config.attributes["url"]`` (or the ``sqlalchemy.url`` option), extra driver arguments from
``config.attributes["connect_args"]``. Logging is left to the application: no ``fileConfig``.

Online runs call ``asyncio.run`` and so must not happen on a thread with a running event loop
(from async code: ``await asyncio.to_thread(dubstudio.db.migrate.upgrade, url)``).

Concurrent runs (an API process and a worker starting together) are serialized:
* SQLite: the whole run is one ``BEGIN IMMEDIATE`` transaction (SQLite's DDL is transactional),
  so a second process waits for the write lock and then finds the schema already at head.
  Foreign keys are switched off for the run, as SQLite's ALTER procedure asks: batch mode's
  "copy and drop" of a parent table would otherwise cascade deletes into its children.
* PostgreSQL: a transaction-scoped advisory lock taken before the version is read.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import event, pool, text
from sqlalchemy.engine import Connection

from dubstudio.db.models import Base, UTCDateTime
from dubstudio.db.session import is_sqlite, make_engine

config = context.config
target_metadata = Base.metadata

# Key of the PostgreSQL advisory lock that serializes migrations ("dubs").
ADVISORY_LOCK_KEY = 0x64756273


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url'] or the sqlalchemy.url option")
    return str(url)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate: write our column types as plain SQLAlchemy ones, so that migration scripts
    do not import the models (which change after the script is written)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        render_item=render_item,
        # SQLite's DDL is transactional, but Alembic does not assume so: one transaction per run.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        context.run_migrations()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration left foreign key violations: {problems[:10]}")


def _sqlite_migration_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Take transaction control from the driver (so BEGIN IMMEDIATE below is ours) and switch
    # foreign keys off; PRAGMA foreign_keys is ignored inside a transaction, so it goes here.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


async def run_async_migrations() -> None:
    url = _url()
    connectable = make_engine(url, connect_args=config.attributes.get("connect_args"), poolclass=pool.NullPool)
    if is_sqlite(url):
        event.listen(connectable.sync_engine, "connect", _sqlite_migration_connect)
        event.listen(connectable.sync_engine, "begin", _sqlite_begin_immediate)
    try:
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await connectable.dispose()


def run_migrations_online() -> None:
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
