"""`serve --processes N`: N API processes on one port, their shared duties (`app.Duties`) in the parent.

On Linux the parent accepts the connections and hands them to the API processes in turn over Unix
sockets (as Node's cluster module does), so 16 keep-alive clients get 8 connections in each process.
The kernel does not balance them: with one shared socket (uvicorn's workers) whichever process wakes
first takes every connection waiting, and with a socket each (SO_REUSEPORT) a hash of the addresses
picks, which splits 16 connections 10 to 6 or worse nearly half the time. The busier process sets the p99.
Elsewhere, uvicorn's workers.

If an API process ends, the server stops (non-zero) and leaves restarting to whatever runs it (compose,
systemd); an API process ends when its parent does, however the parent ended."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from .config import Settings
from .errors import ConfigError

log = logging.getLogger(__name__)
# asyncio's loop, not uvloop: uvloop served two of 16 busy keep-alive connections only every other turn
# (their requests took twice as long as the others', and were the p99); asyncio's takes them in turn.
UVICORN: dict[str, Any] = dict(log_level="warning", access_log=False, loop="asyncio")
APP = "dubstudio.app:worker_app"  # uvicorn's workers make their app from the environment, as the parent did


def serve(settings: Settings, host: str, port: int, processes: int, *, consumer: bool) -> int:
    import uvicorn

    from .app import Duties

    stop_duties = Duties.in_thread(settings, consumer=consumer)
    try:
        if sys.platform == "linux":
            return _supervise(host, port, processes)
        uvicorn.run(APP, factory=True, workers=processes, host=host, port=port, **UVICORN)
        return 0
    finally:
        stop_duties()


def _supervise(host: str, port: int, processes: int) -> int:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host.strip("[]"), port))
        listener.listen(2048)
    except OSError as err:
        listener.close()
        raise ConfigError(f"Cannot listen on {host}:{port}: {err.strerror}.",
                          hint="Choose another --port, or stop what is using it.") from err
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    ctx = multiprocessing.get_context("spawn")
    channels, children = [], []
    for i in range(processes):
        # A stream: its buffer queues thousands of connections (a datagram pair queues 10 on Linux).
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.settimeout(10)  # a process that stopped reading costs a connection, not the server
        children.append(ctx.Process(target=_api_process, args=(theirs, os.getpid()), name=f"dubstudio-api-{i}"))
        children[-1].start()
        theirs.close()
        channels.append(ours)
    listener.settimeout(0.5)
    ended = None
    with listener:
        for turn in itertools.count():
            if stopping.is_set() or (ended := next((c for c in children if not c.is_alive()), None)):
                break
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            # In turn: as many connections for each process. An ended process is seen on the next turn.
            with conn, contextlib.suppress(OSError):
                socket.send_fds(channels[turn % processes], [b"c"], [conn.fileno()])
    if ended is not None:
        log.error("API process %s ended (exit code %s): stopping the server", ended.name, ended.exitcode)
    for child in children:
        child.terminate()  # uvicorn's graceful stop
    for child in children:
        child.join(15)
        if child.is_alive():
            child.kill()
    for channel in channels:
        channel.close()
    return 1 if ended is not None else 0


def _api_process(channel: socket.socket, parent: int) -> None:
    end_with_parent(parent)
    import uvicorn

    from .app import api_app

    class Adopting(uvicorn.Server):
        """uvicorn without a socket of its own: it serves the connections the parent accepts and sends."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=[])  # the app's lifespan; no listener
            channel.setblocking(False)
            asyncio.get_running_loop().add_reader(channel.fileno(), self.adopt)

        def adopt(self) -> None:
            with contextlib.suppress(BlockingIOError):
                while True:  # one byte per connection, its socket attached
                    byte, fds, _, _ = socket.recv_fds(channel, 1, 1)
                    if not byte:
                        asyncio.get_running_loop().remove_reader(channel.fileno())  # the parent is gone
                        return
                    for fd in fds:
                        task = asyncio.ensure_future(self.serve_connection(socket.socket(fileno=fd)))
                        self.server_state.tasks.add(task)  # kept, and awaited on shutdown, as uvicorn's own
                        task.add_done_callback(self.server_state.tasks.discard)

        async def serve_connection(self, sock: socket.socket) -> None:
            make: Any = self.config.http_protocol_class  # a protocol as uvicorn's startup makes them
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: make(config=self.config, server_state=self.server_state, app_state=self.lifespan.state),
                sock)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            asyncio.get_running_loop().remove_reader(channel.fileno())
            await super().shutdown(sockets)

    Adopting(uvicorn.Config(api_app(Settings(), consumer=None), **UVICORN)).run()


def end_with_parent(parent: int) -> None:
    """In an API process: stop (gracefully, as on SIGTERM) once the parent is gone, even if it was killed
    and could not stop us; orphans would linger with their connections. `parent` is given, not read here:
    it may be gone already."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="dubstudio-parent-watch").start()
