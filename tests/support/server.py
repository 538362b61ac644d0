"""A running `dubstudio serve --headless` for end-to-end tests, and helpers to drive its API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.fakes.servers import free_port


class Server:
    """`options`: more of serve's options, e.g. `--api-only --processes 2` (the web frontend's server)."""

    def __init__(self, env: dict[str, str], *options: str) -> None:
        self.env, self.options, self.port = env, options, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen([sys.executable, "-m", "dubstudio", "serve", "--headless", "--port",
                                      str(self.port), *self.options], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stdout.read().decode() if self.proc.stdout else ""
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("serve did not answer /api/v1/health within 60 s")

    def interrupt(self) -> float:
        """Ctrl-C; returns how long the process took to exit."""
        assert self.proc is not None
        t = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        return time.monotonic() - t

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def token(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "dubstudio", "token"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def wait_for(server: Server, auth: dict[str, str], job_id: str, status: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/api/v1/jobs/{job_id}", headers=auth, timeout=10).json()
        if job["status"] == status or job["status"] == "failed":
            return job  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"job not {status} after {timeout} s: {job}")


def server_env(**extra: str) -> dict[str, str]:
    """The test's environment for a server process (its isolated data folder and fakes come from the
    fixtures), without pytest's and NiceGUI's own variables: NiceGUI would think it runs under its test
    fixture."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}, **extra}
