"""Size of the desktop bundle and its start time, against starting from source.

    .venv/bin/python bench/startup.py [EXE] [--runs 5]

EXE: a built executable (e.g. dist/dubstudio/dubstudio); without it, one is built from build.spec into a
temporary folder first (PyInstaller needed; the build time is printed too).

Start time: from launching `serve --headless --port P` to the first 200 from /api/v1/health, each run with
a new, empty data folder (so it includes creating the databases, as a first start does). Measured for
the frozen executable and for `python -m dubstudio` from source (the baseline), alternating, and
summarized by the median. Goals (issue 7): bundle under 300 MB, start under 6 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE_GOAL_MB, START_GOAL_S = 300, 6.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def largest_parts(bundle: Path, count: int = 8) -> list[tuple[int, str]]:
    internal = bundle / "_internal"
    parts = [(folder_size(p) if p.is_dir() else p.stat().st_size, p.name) for p in internal.iterdir()
             if not p.is_symlink()]
    return sorted(parts, reverse=True)[:count]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_time(cmd: list[str], timeout: float = 120.0) -> float:
    """Seconds from launch to the first 200 from /api/v1/health; the server is then stopped."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dubstudio-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBSTUDIO_", "PYTEST_", "NICEGUI_"))}
        env.update(DUBSTUDIO_DATA_DIR=str(Path(tmp) / "data"), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
        t = time.perf_counter()
        proc = subprocess.Popen([*cmd, "serve", "--headless", "--port", str(port)], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while not healthy(port):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise SystemExit(f"{cmd[0]} exited with {proc.returncode}:\n{err[-3000:]}")
                if time.perf_counter() - t > timeout:
                    raise SystemExit(f"{cmd[0]} did not answer /api/v1/health within {timeout:.0f} s")
                time.sleep(0.02)
            return time.perf_counter() - t
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if sys.platform != "win32" else signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def build(out: Path) -> Path:
    t = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"build time:     {time.perf_counter() - t:.0f} s")
    return out / "dubstudio" / ("dubstudio.exe" if sys.platform == "win32" else "dubstudio")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("exe", nargs="?", type=Path, help="a built executable (default: build one into a temp folder)")
    ap.add_argument("--runs", type=int, default=5, help="starts of each kind (default 5)")
    args = ap.parse_args()

    tmp = None
    if args.exe is None:
        tmp = Path(tempfile.mkdtemp(prefix="dubstudio-bundle-"))
        args.exe = build(tmp)
    exe = args.exe.resolve()
    try:
        size = folder_size(exe.parent)
        print(f"bundle:         {exe.parent}")
        print(f"size:           {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB), goal < {SIZE_GOAL_MB} MB")
        for part_size, name in largest_parts(exe.parent):
            print(f"  {part_size / 1e6:7.1f} MB  _internal/{name}")

        frozen: list[float] = []
        source: list[float] = []
        for _ in range(args.runs):  # alternate, so that load on the machine weighs on both alike
            frozen.append(start_time([str(exe)]))
            source.append(start_time([sys.executable, "-m", "dubstudio"]))

        def line(name: str, xs: list[float]) -> str:
            return (f"{name:15} median {statistics.median(xs):.2f} s  (min {min(xs):.2f}, max {max(xs):.2f}; "
                    f"runs: {', '.join(f'{x:.2f}' for x in xs)})")

        print("start to first 200 from /api/v1/health:")
        print(line("  frozen", frozen))
        print(line("  source", source))
        ratio = statistics.median(frozen) / statistics.median(source)
        print(f"  ratio frozen/source: {ratio:.2f}; goal: frozen < {START_GOAL_S:.0f} s")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
