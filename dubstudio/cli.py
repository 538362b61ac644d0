"""The command line: thin adapters over actions. Failures print one plain line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import threading
from pathlib import Path

from . import __version__
from .config import Settings
from .errors import ConfigError, DubError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dubstudio", description="A local-first AI dubbing studio.")
    p.add_argument("--version", action="version", version=f"dubstudio {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("serve", help="serve the UI and the JSON API (and run a queue consumer)")
    s.add_argument("--headless", action="store_true", help="do not open a browser")
    s.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 8080)")
    s.add_argument("--no-worker", action="store_true", help="leave the queue to `dubstudio worker` processes")
    s.add_argument("--api-only", action="store_true", help="serve the JSON API without the studio's pages (always "
                   "so on an interface other than loopback)")
    s.add_argument("--processes", type=int, default=1, metavar="N",
                   help="API processes to answer requests (default 1; more than 1 serves the API only)")
    sub.add_parser("worker", help="run a queue consumer process")
    d = sub.add_parser("dub", help="dub one file from the command line")
    d.add_argument("file", type=Path)
    d.add_argument("--to", required=True, help="target languages, comma-separated, e.g. es,fr")
    d.add_argument("--from", dest="source", default="en", help="source language (default en)")
    d.add_argument("--background", type=Path, help="a background track: FILE is then the voice track (stems)")
    d.add_argument("--out", type=Path, help="output folder (default: FILE's name + .dub beside it)")
    sub.add_parser("token", help="print the local API token")
    sub.add_parser("doctor", help="check the configured engines and their keys")
    r = sub.add_parser("purge", help="delete finished jobs older than the retention period, with their files")
    r.add_argument("--older-than", metavar="AGE", help="an age such as 48h, 7d or 90m (default: the "
                   "DUBSTUDIO_RETENTION_HOURS setting)")
    r.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv and getattr(sys, "frozen", False):  # the desktop app, double-clicked: the UI on a free local port
        argv = ["serve", "--host", "127.0.0.1", "--port", str(_free_port())]
    if argv[:1] == ["_espeak-server"]:  # the offline voice's helper process, also when frozen
        from .vendors.offline.espeak import serve_forever

        serve_forever()
        return 0
    if argv[:1] == ["_run-job"] and len(argv) == 2:  # one job in a child process of `serve`
        return _run_job(argv[1])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dubstudio").setLevel(logging.INFO)
    try:
        settings = Settings()
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "worker":
            return _worker(settings)
        if args.command == "dub":
            return asyncio.run(_dub(settings, args.file, args.to, args.source, args.out, args.background))
        if args.command == "token":
            return _token(settings)
        if args.command == "doctor":
            return _doctor(settings)
        if args.command == "purge":
            return _purge(settings, args.older_than, args.dry_run)
        _parser().print_help()
        return 0
    except DubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    local_only = _is_loopback(host)
    if not local_only and settings.auth == "local" and settings.api_token is None:
        raise ConfigError(f"Serving on {host} would open dubstudio to other machines without auth configured.",
                          hint="Set DUBSTUDIO_AUTH=supabase (with DUBSTUDIO_SUPABASE_URL), or DUBSTUDIO_API_TOKEN; "
                          "or serve on 127.0.0.1.")
    if args.processes < 1:
        raise ConfigError(f"--processes {args.processes} is not a number of processes.", hint="Use 1 or more.")
    studio = local_only and not args.api_only and args.processes == 1
    n = args.processes
    print(f"dubstudio: serving on http://{host}:{port} (Ctrl-C to stop)" + ("" if studio else
          f"; the API only, in {n} process{'es' if n > 1 else ''}" + ("" if local_only else
                                                                      ": the studio's pages are for 127.0.0.1")),
          file=sys.stderr, flush=True)
    if studio:
        from nicegui import ui

        from .app import build

        build(settings, consumer=not args.no_worker)
        ui.run(host=host, port=port, title="dubstudio", reload=False, show=not args.headless and settings.open_browser,
               show_welcome_message=False, fastapi_docs=True, uvicorn_logging_level="warning")
        return 0
    if args.processes > 1:
        from .processes import serve

        return serve(settings, host, port, args.processes, consumer=not args.no_worker)
    import uvicorn

    from .app import api_app
    from .processes import UVICORN

    uvicorn.run(api_app(settings, consumer=not args.no_worker), host=host, port=port, **UVICORN)
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (for the desktop app)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(settings: Settings) -> int:
    from . import modes
    from .runtime import Database, prepare
    from .tasks import Queue, requeue

    modes.check(settings)  # before anything is made in the data folder
    prepare(settings)
    queue = Queue(settings)

    async def stale() -> None:
        db = Database.connect(settings)
        try:
            await requeue(queue, db)
        finally:
            await db.close()

    asyncio.run(stale())
    stop = threading.Event()
    queue.watch(stop)
    try:
        queue.consumer(in_process=False).run()
    finally:
        stop.set()
    return 0


def _run_job(job_id: str) -> int:
    from .tasks import Queue, execute

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(execute(Queue(Settings()), job_id))
    except KeyboardInterrupt:  # Ctrl-C in the terminal reaches the whole group; the server requeues the job
        return 130
    return 0


def _doctor(settings: Settings) -> int:
    from .doctor import run

    checks = run(settings)
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.role:<15} {c.engine:<11} key: {c.key:<32} {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


def _purge(settings: Settings, older_than: str | None, dry_run: bool) -> int:
    from datetime import timedelta

    from . import modes
    from .retention import Purged, parse_age, purge
    from .runtime import Database, prepare
    from .services import Services
    from .tasks import Queue

    if older_than is None and settings.retention_hours <= 0:
        print("Retention is off (DUBSTUDIO_RETENTION_HOURS is 0): nothing purged. Give --older-than 48h to purge "
              "anyway.", file=sys.stderr)
        return 0
    age = parse_age(older_than) if older_than is not None else timedelta(hours=settings.retention_hours)
    storage = prepare(settings)
    queue = Queue(settings)

    async def go() -> list[Purged]:
        svc = Services(settings=settings, db=Database.connect(settings), storage=storage, queue=queue,
                       auth=modes.authenticator(settings), remote=queue.remote)
        try:
            return await purge(svc, age, dry_run=dry_run)
        finally:
            await svc.db.close()
            svc.close()

    gone = asyncio.run(go())
    jobs = [p for p in gone if p.kind == "job"]
    for p in gone:
        print(f"{'would delete' if dry_run else 'deleted'} {p.id} {p.filename} " + (
            f"({p.status}, finished {p.finished_at:%Y-%m-%d %H:%M} UTC)" if p.kind == "job" else
            f"(an upload no job took, from {p.finished_at:%Y-%m-%d %H:%M} UTC)"))
    hours = age.total_seconds() / 3600
    verb = "would be" if dry_run else "were"
    print(f"{len(jobs)} finished job(s) older than {hours:g} h {verb} deleted.", file=sys.stderr)
    if len(gone) > len(jobs):
        print(f"{len(gone) - len(jobs)} unused upload(s) older than {hours:g} h {verb} deleted.", file=sys.stderr)
    return 0


def _token(settings: Settings) -> int:
    from .auth.local import api_token, token_location

    token = api_token(settings)
    print(token)
    print(f"(stored in {token_location(settings)})", file=sys.stderr)
    return 0


async def _dub(settings: Settings, file: Path, targets: str, source: str, out: Path | None,
               background: Path | None = None) -> int:
    from tqdm import tqdm

    from . import actions
    from .pipeline.run import export
    from .runtime import Database, prepare
    from .tasks import Queue, in_daemon_thread
    from .vendors import registry

    for path in (file, background):
        if path is not None and not path.is_file():
            raise DubError(f"No file at {path}.", hint="Check the path.")
    # A file on this machine, dubbed in this process: the data folder is its store, whatever
    # DUBSTUDIO_STORAGE says (a bucket is for jobs the API takes).
    settings = settings.model_copy(update={"storage": "local"})
    _, langs = actions.check_job_request(settings, source, targets)
    storage = await asyncio.to_thread(prepare, settings)
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            with contextlib.ExitStack() as files:
                f = files.enter_context(file.open("rb"))
                bg = None
                if background is not None:
                    b = files.enter_context(background.open("rb"))
                    bg = (background.name, iter(lambda: b.read(1 << 20), b""))
                job = await actions.create_job(settings, s, storage, "local", file.name,
                                               iter(lambda: f.read(1 << 20), b""), source, targets, background=bg)
        if job.duration:
            guess = actions.estimate(settings, job.duration, langs)
            print(f"estimated cost: ${guess['total']:.4f} ({', '.join(registry.names(settings))})", file=sys.stderr)
        queue = Queue(settings)
        run = asyncio.ensure_future(in_daemon_thread(queue.run_job.call_local, job.id))
        with tqdm(total=100, unit="%", desc="queued", file=sys.stderr,
                  bar_format="{desc:<14} {bar} {n_fmt}% [{elapsed}]") as bar:
            while True:
                done = run.done()
                async with db.session() as s:
                    current = await actions.get_job(s, "local", job.id)
                bar.set_description_str(current.stage or current.status)
                bar.update(int(current.progress * 100) - bar.n)
                if done:
                    break
                await asyncio.sleep(0.25)
        run.result()
        if current.status != "done":
            failures = [f"{t.language}: {t.error_message}" for t in current.languages if t.error_message]
            raise DubError(current.error_message or "The job failed.", details={"languages": failures},
                           hint=" ".join(failures) if current.error_code == "language_failed" else "")
        print(f"cost: ${current.cost_total:.4f}", file=sys.stderr)
        out_dir = out or file.with_name(file.stem + ".dub")
        for path in export(storage.local_path(f"jobs/{job.id}"), out_dir):
            print(path)
        return 0
    finally:
        await db.close()
