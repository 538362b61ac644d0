"""`serve --processes N`: N API processes on one port, their shared duties (`app.Duties`) in the parent.

On Linux each API process binds its own socket with SO_REUSEPORT and the kernel spreads new connections
evenly over them. uvicorn's own workers share one socket, and whichever wakes first takes every
connection waiting: 16 clients connecting at once could mostly land on one process (bench/api.py, 16
clients listing jobs: p99 75-83 ms this way against 97-134 ms). Elsewhere, uvicorn's workers.

If an API process ends, the server stops (non-zero) and leaves restarting to whatever runs it (compose,
systemd); an API process ends when its parent does, however the parent ended.
"""

from __future__ import annotations

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
UVICORN: dict[str, Any] = dict(log_level="warning", access_log=False)
APP = "dubstudio.app:worker_app"  # each process makes its app from the environment, as the parent did


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
    try:
        _bind(host, port).close()  # a port taken by another program fails here, once, with a clear message
    except OSError as err:
        raise ConfigError(f"Cannot listen on {host}:{port}: {err.strerror}.",
                          hint="Choose another --port, or stop what is using it.") from err
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_api_process, args=(host, port), name=f"dubstudio-api-{i}")
                for i in range(processes)]
    for child in children:
        child.start()
    ended = None
    while not stopping.wait(0.5) and ended is None:
        ended = next((c for c in children if not c.is_alive()), None)
    if ended is not None:
        log.error("API process %s ended (exit code %s): stopping the server", ended.name, ended.exitcode)
    for child in children:
        child.terminate()  # uvicorn's graceful stop
    for child in children:
        child.join(15)
        if child.is_alive():
            child.kill()
    return 1 if ended is not None else 0


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    return sock


def _api_process(host: str, port: int) -> None:
    import uvicorn

    sock = _bind(host, port)
    sock.listen(2048)
    uvicorn.Server(uvicorn.Config(APP, factory=True, **UVICORN)).run(sockets=[sock])


def end_with_parent() -> None:
    """In an API process: stop (gracefully, as on SIGTERM) once the parent is gone, even if it was killed
    and could not stop us; orphans would hold the port."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="dubstudio-parent-watch").start()
