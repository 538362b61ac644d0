"""Build the desktop bundle from build.spec with PyInstaller (one folder).

    .venv/bin/python packaging/build.py OUTDIR [--workpath DIR] [--clean]

The bundle lands in OUTDIR/dubstudio/ (executable: OUTDIR/dubstudio/dubstudio, or dubstudio.exe on
Windows); PyInstaller's work files go to --workpath (default: OUTDIR/.work), so a second build into the
same OUTDIR reuses the analysis and is faster. Prints the executable's path, the build time and the
bundle's size. Needs PyInstaller (a dev dependency) in the same environment as dubstudio.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "build.spec"
NAME = "dubstudio"


def executable(out: Path) -> Path:
    """Where the frozen executable is in a build made into `out`."""
    return out / NAME / (f"{NAME}.exe" if sys.platform == "win32" else NAME)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def build(out: Path, workpath: Path | None = None, clean: bool = False) -> Path:
    if importlib.util.find_spec("PyInstaller") is None:
        raise SystemExit("PyInstaller is not installed in this environment: run "
                         f"`{sys.executable} -m pip install -e '.[dev]'` (it is a dev dependency).")
    out = out.resolve()
    workpath = (workpath or out / ".work").resolve()
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--log-level", "WARN",
           "--distpath", str(out), "--workpath", str(workpath)]
    if clean:
        cmd.append("--clean")
    # The hooks import the app's dependencies in subprocesses: keep test-runner settings away from them.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    exe = executable(out)
    if not exe.is_file():
        raise SystemExit(f"PyInstaller finished but there is no executable at {exe}")
    return exe


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output folder; the bundle goes to OUT/dubstudio/")
    p.add_argument("--workpath", type=Path, help="PyInstaller's work folder (default OUT/.work)")
    p.add_argument("--clean", action="store_true", help="empty PyInstaller's caches first")
    args = p.parse_args()
    t = time.monotonic()
    try:
        exe = build(args.out, args.workpath, args.clean)
    except subprocess.CalledProcessError as err:
        print(f"error: PyInstaller failed (exit {err.returncode})", file=sys.stderr)
        return 1
    size = folder_size(exe.parent)
    print(f"executable: {exe}")
    print(f"build time: {time.monotonic() - t:.0f} s")
    print(f"bundle size: {size / 2**20:.0f} MiB ({size / 1e6:.0f} MB) in {exe.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
