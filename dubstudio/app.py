"""build(settings): the JSON API, the UI pages, and start-up/shut-down on NiceGUI's FastAPI app.

Routes and pages are registered by calling build() (not at import), so NiceGUI's test fixture, which
clears routes between tests, gets them back each time its main file runs.
"""

from __future__ import annotations

import gc
import logging
import threading

from fastapi.middleware.cors import CORSMiddleware
from nicegui import app

from . import modes, retention
from .api import errors as api_errors
from .api.routes import router
from .config import Settings
from .runtime import Database, prepare_off_loop
from .services import Services
from .tasks import Queue, requeue
from .ui import pages

log = logging.getLogger(__name__)
RETENTION_EVERY = 3600.0  # seconds between the server's retention purges


def build(settings: Settings, *, consumer: bool = True, studio: bool = True) -> None:
    """Prepare the data folder and schema, then register everything on NiceGUI's app.

    `consumer`: run the queue's consumer in this process (the desktop, or `serve --headless` without
    separate workers). Jobs then run in child processes (Queue(isolate=True)).
    `studio`: serve the studio's pages (the desktop's UI, which acts as the local user): not on a
    server reachable from other machines, where the API (with its auth) is the way in."""
    modes.check(settings)  # a Supabase mode missing a setting stops here, before anything is made
    storage = prepare_off_loop(settings)
    queue = Queue(settings, isolate=True)
    svc = Services(settings=settings, db=Database.connect(settings), storage=storage, queue=queue,
                   auth=modes.authenticator(settings), remote=queue.remote)
    app.state.services = svc  # ready before the first request: start-up handlers run as background tasks
    api_errors.install(app)
    if settings.cors_origins:  # the web frontend's origins only; none by default
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Range"], max_age=600)
    app.include_router(router)
    if studio:
        pages.register()
    app.timer(RETENTION_EVERY, lambda: retention.sweep(svc))  # the first at start-up, then hourly
    state: dict[str, object] = {}
    stopping = threading.Event()

    async def startup() -> None:
        stale = await requeue(svc.queue, svc.db)
        if stale:
            log.info("requeued %d job(s) left running by a stopped process", len(stale))
        if consumer:
            c = svc.queue.consumer(in_process=True)
            c.start()
            state["consumer"] = c
            svc.queue.watch(stopping)
        # What start-up made lives as long as the server: out of the collector's sight, so that a full
        # collection does not walk it (~85 ms with the event loop stopped, every few hundred requests).
        gc.freeze()

    async def shutdown() -> None:
        stopping.set()
        interrupted = set(svc.queue.running)  # before the children stop and leave the set
        c = state.pop("consumer", None)
        if c is not None:
            c.stop(graceful=False)  # type: ignore[attr-defined]
        svc.queue.stop_children()
        if interrupted:  # back on the queue, resumed from the last finished stage on the next start
            await requeue(svc.queue, svc.db, interrupted)
        await svc.db.close()
        svc.close()

    app.on_startup(startup)
    app.on_shutdown(shutdown)
