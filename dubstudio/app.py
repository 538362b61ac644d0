"""The serving process: the JSON API, the studio's pages, and the server's duties.

- `build(settings)`: the studio (the desktop): the API and the UI pages on NiceGUI's FastAPI app, in one
  process. Routes and pages are registered by calling build() (not at import), so NiceGUI's test
  fixture, which clears routes between tests, gets them back each time its main file runs.
- `api_app(settings)`: the API alone on a plain FastAPI app, for a server that web frontends use. It
  skips NiceGUI's middlewares (three of them wrap every request in a task group of their own: 5x the cost
  of `/health`), and it can run in several processes (`serve --processes N`, `processes.py`): `worker_app`
  is the app of each of those, and `Duties.in_thread` does their shared duties once, in the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI
from huey.consumer import Consumer

from . import __version__, modes, retention
from .api import errors as api_errors
from .api.routes import router
from .config import Settings
from .runtime import Database, prepare_off_loop
from .services import Services
from .tasks import Queue, requeue

log = logging.getLogger(__name__)
RETENTION_EVERY = 3600.0  # seconds between the server's retention purges
DESCRIPTION = "Dub videos into other languages: upload, create jobs, follow them, edit lines, download."


def services(settings: Settings) -> Services:
    """Prepare the data folder and schema, then the parts a serving process holds."""
    modes.check(settings)  # a Supabase mode missing a setting stops here, before anything is made
    storage = prepare_off_loop(settings)
    queue = Queue(settings, isolate=True)
    return Services(settings=settings, db=Database.connect(settings), storage=storage, queue=queue,
                    auth=modes.authenticator(settings), remote=queue.remote)


def install_api(app: FastAPI, svc: Services) -> None:
    from fastapi.middleware.cors import CORSMiddleware

    app.state.services = svc  # ready before the first request: start-up handlers run as background tasks
    api_errors.install(app)
    if svc.settings.cors_origins:  # the web frontend's origins only; none by default
        app.add_middleware(CORSMiddleware, allow_origins=svc.settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Range"], max_age=600)
    app.include_router(router)


class Duties:
    """What a server does once however many processes answer requests: queue again the jobs a stopped
    process left running, run the queue's consumer (unless `dubstudio worker` processes do), and purge
    expired jobs at start-up and hourly. On stop, the jobs it was running go back on the queue."""

    def __init__(self, svc: Services, *, consumer: bool) -> None:
        self.svc, self.consumer = svc, consumer
        self._stopping = threading.Event()
        self._consumer: Consumer | None = None
        self._sweeps: asyncio.Task[None] | None = None

    async def start(self) -> None:
        svc = self.svc
        stale = await requeue(svc.queue, svc.db)
        if stale:
            log.info("requeued %d job(s) left running by a stopped process", len(stale))
        if self.consumer:
            self._consumer = svc.queue.consumer(in_process=True)
            self._consumer.start()
            svc.queue.watch(self._stopping)
        self._sweeps = asyncio.create_task(_every(RETENTION_EVERY, lambda: retention.sweep(svc)))

    async def stop(self) -> None:
        svc = self.svc
        self._stopping.set()
        if self._sweeps is not None:
            self._sweeps.cancel()
        interrupted = set(svc.queue.running)  # before the children stop and leave the set
        if self._consumer is not None:
            self._consumer.stop(graceful=False)
        svc.queue.stop_children()
        if interrupted:  # back on the queue, resumed from the last finished stage on the next start
            await requeue(svc.queue, svc.db, interrupted)

    @staticmethod
    def in_thread(settings: Settings, *, consumer: bool) -> Callable[[], None]:
        """Start the duties on an event loop of their own, in a thread of this process (the parent of
        `serve --processes N`, whose main thread supervises the API processes); returns `stop`."""
        started, done = threading.Event(), asyncio.Event()
        loop: list[asyncio.AbstractEventLoop] = []
        failed: list[BaseException] = []

        async def main() -> None:
            svc = services(settings)
            duties = Duties(svc, consumer=consumer)
            try:
                await duties.start()
                loop.append(asyncio.get_running_loop())
                started.set()
                await done.wait()
                await duties.stop()
            finally:
                await svc.db.close()
                svc.close()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as err:  # reported to the caller of in_thread
                failed.append(err)
            finally:
                started.set()

        thread = threading.Thread(target=run, name="dubstudio-duties")
        thread.start()
        started.wait()
        if failed:
            thread.join()
            raise failed[0]

        def stop() -> None:
            loop[0].call_soon_threadsafe(done.set)
            thread.join()

        return stop


async def _every(seconds: float, work: Callable[[], Awaitable[None]]) -> None:
    while True:
        await work()
        await asyncio.sleep(seconds)


def _settle() -> None:
    # What start-up made lives as long as the server: out of the collector's sight, so that a full
    # collection does not walk it (~85 ms with the event loop stopped, every few hundred requests).
    gc.freeze()


def build(settings: Settings, *, consumer: bool = True) -> None:
    """The studio: the API and the pages on NiceGUI's app, with the duties in this process.
    `consumer`: run the queue's consumer here (the desktop, or without separate workers); jobs then run
    in child processes (Queue(isolate=True))."""
    from nicegui import app

    from .ui import pages

    svc = services(settings)
    install_api(app, svc)
    pages.register()
    duties = Duties(svc, consumer=consumer)

    async def startup() -> None:
        await duties.start()
        _settle()

    async def shutdown() -> None:
        await duties.stop()
        await svc.db.close()
        svc.close()

    app.on_startup(startup)
    app.on_shutdown(shutdown)


def api_app(settings: Settings, *, consumer: bool | None = True) -> FastAPI:
    """The API alone. `consumer`: as for build(); None when another process holds the duties."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        duties = None if consumer is None else Duties(svc, consumer=consumer)
        if duties is not None:
            await duties.start()
        _settle()
        try:
            yield
        finally:
            if duties is not None:
                await duties.stop()
            await svc.db.close()
            svc.close()

    svc = services(settings)
    app = FastAPI(title="dubstudio", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    install_api(app, svc)
    return app


def worker_app() -> FastAPI:
    """One of `serve --processes N`'s API processes as uvicorn's workers run them (not on Linux: see
    processes.py): settings from the environment, duties left to the parent, gone when the parent is."""
    from .processes import end_with_parent

    end_with_parent(os.getppid())
    return api_app(Settings(), consumer=None)
