"""What every page shares: the services, the layout, words for statuses and stages, download names."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nicegui import app, ui

from .. import languages
from ..errors import DubError
from ..services import Services

log = logging.getLogger(__name__)

APP_NAME = "dubstudio"
REFRESH_SECONDS = 1.0
UNEXPECTED = "Something went wrong on our side. Try again; if it keeps happening, the log has the details."

STATUS_WORDS = {"queued": "Waiting", "running": "Working", "done": "Done", "failed": "Failed",
                "cancelled": "Cancelled", "deleted": "Deleted", "awaiting_input": "Waiting for you",
                "awaiting_translation": "Waiting for your translations"}
STAGE_WORDS = {"ingest": "reading the file", "transcribe": "transcribing", "translate": "translating",
               "synthesize": "speaking", "fit": "fitting the timing", "mix": "mixing", "captions": "captioning",
               "deliver": "encoding"}


def services() -> Services:
    svc: Services = app.state.services
    return svc


def language_options() -> dict[str, str]:
    """Languages by code, sorted by their names."""
    return dict(sorted(languages.NAMES.items(), key=lambda kv: kv[1]))


def percent(value: float) -> str:
    return f"{round(value * 100)}%"


def clean_filename(name: str) -> str:
    """The last part of what the browser sent, without characters a file system may refuse."""
    base = re.sub(r'[\x00-\x1f<>:"|?*]', "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return base[-200:] or "upload"


def download_name(source_filename: str, language: str | None, ext: str) -> str:
    stem = Path(clean_filename(source_filename)).stem or "dub"
    return f"{stem}.{language}.{ext}" if language else f"{stem}.{ext}"


def download_url(job_id: str, artifact_path: str, version: str | None = None) -> str:
    """The download route's address of an artifact (`jobs/<id>/<rel>`); `version` (a checksum) makes a
    remade file a new address, so a browser never plays a cached old one."""
    rel = artifact_path.removeprefix(f"jobs/{job_id}/")
    return f"/download/{job_id}/{rel}" + (f"?v={version[:12]}" if version else "")


def status_text(status: str, stage: str | None) -> str:
    words = STATUS_WORDS.get(status, status)
    doing = STAGE_WORDS.get(stage or "", "")
    return f"{words}, {doing}" if status == "running" and doing else words


@contextmanager
def frame(title: str, *, wide: bool = False) -> Iterator[None]:
    """The shared layout: a header with the app name and a dark-mode switch, then the page's column."""
    ui.page_title(f"{title} · {APP_NAME}")
    dark = ui.dark_mode(False)
    with ui.header().classes("items-center justify-between px-4"):
        ui.link(APP_NAME, "/").classes("text-xl font-bold text-white no-underline").mark("app-name")
        with ui.row().classes("items-center gap-4"):
            ui.link("Settings", "/settings").classes("text-white").mark("settings-link")
            ui.switch("Dark mode").bind_value(dark).props('color=white keep-color aria-label="Dark mode"') \
                .mark("dark-toggle")
    width = "max-w-6xl" if wide else "max-w-4xl"
    with ui.column().classes(f"w-full {width} mx-auto p-4 gap-4"):
        ui.label(title).classes("text-2xl font-semibold break-all").props("role=heading aria-level=1")
        yield


def tell(exc: Exception, doing: str) -> None:
    """A failure in plain words: ours are DubErrors with their fix; anything else is logged, not shown."""
    if isinstance(exc, DubError):
        ui.notify(str(exc), type="negative", multi_line=True)
    else:
        log.warning("could not %s", doing, exc_info=exc)
        ui.notify(UNEXPECTED, type="negative")
