"""The studio's pages: upload a file, pick languages and engines, see the cost estimate, press Dub, watch
the jobs (retry, cancel, delete) and play or download results.

`register()` declares every page and route inside the function, so NiceGUI's test fixture (which drops
routes between tests) gets them back each time its main file runs. The UI acts as the desktop's local
user; it reads the services `build()` puts on `app.state.services`.

Markers for tests: `upload`, `source-language`, `target-languages`, `engine-<stt|translator|tts>`,
`engines-missing`, `estimate`, `dub`, `staged-file`, `jobs`, `no-jobs`; per job `job job-<id>` (with
`job-status status-<status>`, `job-progress`, `job-error`, `download-manifest`, `open-job`: the link to its
page, see `job_page`, and `retry-job`, `cancel-job`, `delete-job`; the delete dialog's `confirm-delete` and
`keep-job`); per language `lang lang-<code>` (with `lang-status`, `lang-progress`, `lang-error`,
`audio-<code>` and `download-<code>-<wav|m4a|voice|srt>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse
from nicegui import app, events, ui

from .. import actions, languages
from ..auth.local import LOCAL_USER_ID
from ..errors import DubError, NotFound
from ..services import Services
from ..vendors import registry
from . import engines, job_page, settings_page
from .common import (
    REFRESH_SECONDS,
    UNEXPECTED,
    clean_filename,
    download_name,
    download_url,
    frame,
    language_options,
    percent,
    services,
    status_text,
    tell,
)

log = logging.getLogger(__name__)

STAGING_MAX_AGE = 24 * 3600.0  # seconds an upload may wait for the Dub button before it is swept away
CANCELLABLE = ("queued", "running", "awaiting_input")
NO_ESTIMATE = "The cost estimate appears once a file is chosen."
NO_BACKGROUND = "No background track: the dub is mixed over the original."
# Artifact kind -> (button text, marker suffix, file extension)
DOWNLOADS = {"audio_wav": ("WAV", "wav", "wav"), "audio": ("M4A", "m4a", "m4a"),
             "voice_wav": ("Voice only (WAV)", "voice", "wav"), "captions_srt": ("Subtitles (SRT)", "srt", "srt")}


def money(amount: float) -> str:
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


# --- the upload form ---------------------------------------------------------------------------------

@dataclass
class Staged:
    """An uploaded file waiting for the Dub button, in its own folder under the data folder."""

    path: Path
    name: str
    duration: float | None

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


async def _read_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, size):
            yield chunk


class DubForm:
    def __init__(self, svc: Services, on_created: Callable[[], Awaitable[None]]) -> None:
        self.svc = svc
        self.on_created = on_created
        self.staged: Staged | None = None
        self.background: Staged | None = None  # stems: the file is then the voice alone
        self.staging_root = svc.settings.data_dir / "ui-staging"
        self.sweep()
        with ui.card().classes("w-full"):
            self.upload = ui.upload(label="Audio or video file", auto_upload=True, on_upload=self.received) \
                .classes("w-full").mark("upload")
            self.file_label = ui.label("No file chosen yet.").classes("text-sm").mark("staged-file")
            with ui.expansion("Background track (stems)", icon="library_music").classes("w-full").mark("stems"):
                ui.label("With a background track (music and effects), the file above is the voice alone: the dub "
                         "replaces it over this track instead of being mixed over the original.") \
                    .classes("text-sm opacity-70")
                self.bg_upload = ui.upload(label="Background track", auto_upload=True,
                                           on_upload=self.received_background).classes("w-full") \
                    .mark("upload-background")
                with ui.row().classes("items-center gap-2"):
                    self.bg_label = ui.label(NO_BACKGROUND).classes("text-sm").mark("staged-background")
                    ui.button("Remove", icon="close", on_click=self.drop_background) \
                        .props('flat dense no-caps aria-label="Remove the background track"') \
                        .mark("remove-background")
            with ui.row().classes("w-full items-end gap-4"):
                self.source = ui.select({"auto": "Detect automatically", **language_options()}, value="en",
                                        label="Spoken language", with_input=True) \
                    .classes("min-w-[12rem]").mark("source-language")
                self.targets = ui.select(language_options(), value=["es"], multiple=True, label="Dub into",
                                         with_input=True, on_change=self.show_estimate).props("use-chips") \
                    .classes("min-w-[16rem] grow").mark("target-languages")
            with ui.row().classes("w-full items-end gap-4"):
                self.engines = {role: self.engine_select(role, words) for role, words in engines.ROLES.items()}
            if missing := engines.not_ready(svc.settings):
                with ui.row().classes("items-center gap-1 text-sm opacity-80").mark("engines-missing"):
                    ui.label(" ".join(missing))
                    ui.link("Set them up in Settings.", "/settings")
            with ui.row().classes("w-full items-center gap-4 no-wrap"):
                self.estimate = ui.label(NO_ESTIMATE).classes("grow").props('aria-live="polite"').mark("estimate")
                self.button = ui.button("Dub", icon="record_voice_over", on_click=self.dub).mark("dub")
        ui.context.client.on_delete(self.discard)

    def engine_select(self, role: str, words: str) -> ui.select:
        """Only engines that can run now; the default where it is one of them (else none is chosen, and
        Dub says what to set up, as the API would)."""
        choices = engines.ready(self.svc.settings, role)
        default = getattr(self.svc.settings, role)
        return ui.select(choices, value=default if default in choices else None, label=words,
                         on_change=self.show_estimate).classes("min-w-[14rem] grow").mark(f"engine-{role}")

    def options(self) -> dict[str, str]:
        """The job's engine choices (what was left unchosen falls back to the settings)."""
        return {role: select.value for role, select in self.engines.items() if select.value}

    def show_estimate(self) -> None:
        duration = self.staged.duration if self.staged is not None else None
        targets = list(self.targets.value or [])
        if not duration:
            self.estimate.set_text(NO_ESTIMATE if self.staged is None else "No estimate: the file's length is unknown.")
            return
        if not targets:
            self.estimate.set_text("Choose a language to dub into to see the cost estimate.")
            return
        try:
            guess = actions.estimate(registry.for_job(self.svc.settings, self.options()), duration, targets)
        except DubError as err:
            self.estimate.set_text(str(err))
            return
        if guess["total"] == 0:
            self.estimate.set_text(f"Estimated cost: nothing ({duration:.0f} s; every engine chosen is free).")
            return
        each = f"{money(guess['per_language'])} per language"
        self.estimate.set_text(f"Estimated cost: {money(guess['total'])} for {duration:.0f} s in {len(targets)} "
                               f"language(s) (transcription {money(guess['transcription'])}, {each}).")

    def sweep(self) -> None:
        """Forget uploads left behind by pages closed without a Dub (or a stopped app)."""
        if self.staging_root.is_dir():
            for folder in self.staging_root.iterdir():
                with contextlib.suppress(OSError):
                    if time.time() - folder.stat().st_mtime > STAGING_MAX_AGE:
                        shutil.rmtree(folder, ignore_errors=True)

    def discard(self) -> None:
        if self.staged is not None:
            self.staged.discard()
            self.staged = None
        self.drop_background()

    def drop_background(self) -> None:
        if self.background is not None:
            self.background.discard()
            self.background = None
        self.bg_label.set_text(NO_BACKGROUND)

    async def received(self, e: events.UploadEventArguments) -> None:
        """Keep the file in a staging folder once it is known to hold audio; the label shows which."""
        if self.staged is not None:
            self.staged.discard()
            self.staged = None
        self.file_label.set_text("No file chosen yet.")
        staged = await self.stage(e, self.upload)
        if staged is None:
            self.show_estimate()
            return
        if self.staged is not None:
            self.staged.discard()  # a file that came in meanwhile
        self.staged = staged
        length = f" ({staged.duration:.0f} s)" if staged.duration else ""
        self.file_label.set_text(f"Ready: {staged.name}{length}")
        self.show_estimate()

    async def received_background(self, e: events.UploadEventArguments) -> None:
        self.drop_background()
        staged = await self.stage(e, self.bg_upload)
        if staged is not None:
            self.background = staged
            self.bg_label.set_text(f"Background: {staged.name}")

    async def stage(self, e: events.UploadEventArguments, uploader: ui.upload) -> Staged | None:
        """The upload in its own staging folder once it is known to hold usable audio; None (and the
        reason told) otherwise."""
        name = clean_filename(e.file.name)
        path = self.staging_root / uuid.uuid4().hex / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            await e.file.save(path)
            from ..pipeline import ingest  # loaded with the first file, not with the server

            info = await asyncio.to_thread(ingest.check_input, path, self.svc.settings.max_duration)
        except DubError as err:
            shutil.rmtree(path.parent, ignore_errors=True)
            ui.notify(str(err), type="negative", multi_line=True)
            return None
        except Exception:
            shutil.rmtree(path.parent, ignore_errors=True)
            log.warning("could not take the upload %r", name, exc_info=True)
            ui.notify(UNEXPECTED, type="negative")
            return None
        finally:
            uploader.reset()  # the label, not the uploader's list, tells which file is ready
        return Staged(path, name, info.duration)

    async def dub(self) -> None:
        if self.staged is None:
            ui.notify("Choose an audio or video file first.", type="warning")
            return
        if not self.targets.value:
            ui.notify("Choose at least one language to dub into.", type="warning")
            return
        # The job takes the file; one uploaded meanwhile is kept for the next Dub.
        staged, targets, self.staged = self.staged, list(self.targets.value), None
        bg = self.background
        self.button.disable()
        try:
            async with self.svc.db.session() as s:
                job = await actions.create_job(self.svc.settings, s, self.svc.storage, LOCAL_USER_ID, staged.name,
                                               _read_chunks(staged.path), self.source.value, targets, self.options(),
                                               background=(bg.name, _read_chunks(bg.path)) if bg else None)
            self.svc.queue.enqueue(job.id)
        except Exception as exc:
            if self.staged is None:
                self.staged = staged  # still ready: the user can fix the problem and press Dub again
            else:
                staged.discard()
            if isinstance(exc, DubError):
                ui.notify(str(exc), type="negative", multi_line=True)
            else:
                log.warning("could not create a job for %r", staged.name, exc_info=True)
                ui.notify(UNEXPECTED, type="negative")
            return
        finally:
            self.button.enable()
        staged.discard()
        if bg is not None and bg is self.background:
            self.drop_background()
        if self.staged is None:
            self.file_label.set_text("No file chosen yet.")
            self.show_estimate()
        names = ", ".join(languages.NAMES[t] for t in targets)
        ui.notify(f"Queued {staged.name} for {names}.", type="positive")
        await self.on_created()


# --- the job list ------------------------------------------------------------------------------------

def _basic(view: dict[str, Any]) -> dict[str, Any]:
    """A job's view without its artifacts: what tells that something changed."""
    return {k: v for k, v in view.items() if k != "artifacts"}


def _downloads(job_id: str, filename: str, language: str | None, artifacts: list[dict[str, Any]]) -> None:
    prefix = f"jobs/{job_id}/"
    for art in artifacts:
        if art["language"] != language or not art["path"].startswith(prefix):
            continue
        if language is None and art["kind"] == "manifest":
            text, suffix, ext = "Manifest (JSON)", "manifest", "json"
        elif art["kind"] in DOWNLOADS:
            text, suffix, ext = DOWNLOADS[art["kind"]]
        else:
            continue
        url = download_url(job_id, art["path"])
        name = download_name(filename, f"{language}.voice" if suffix == "voice" else language, ext)
        marker = f"download-{language}-{suffix}" if language else f"download-{suffix}"
        ui.button(text, icon="download", on_click=lambda u=url, n=name: ui.download.from_url(u, n)) \
            .props("outline dense no-caps").mark(marker)


class LanguageRow:
    def __init__(self, language: str) -> None:
        self.language = language
        self.box = ui.column().classes("w-full gap-1").mark(f"lang lang-{language}")
        self.signature: Any = None

    def update(self, view: dict[str, Any]) -> None:
        task = view["languages"][self.language]
        artifacts = [a for a in view.get("artifacts", []) if a["language"] == self.language]
        signature = (task, artifacts)
        if signature == self.signature:
            return  # unchanged: leave the player alone so playback is not interrupted
        self.signature = signature
        self.box.clear()
        with self.box:
            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                ui.label(languages.NAMES.get(self.language, self.language)).classes("font-medium w-28")
                ui.label(status_text(task["status"], task["stage"])).mark("lang-status")
                ui.linear_progress(task["progress"], show_value=False).classes("grow").mark("lang-progress")
                ui.label(percent(task["progress"])).classes("text-sm w-12 text-right")
            if task["error"] and task["error"]["message"] != (view["error"] or {}).get("message"):
                ui.label(task["error"]["message"]).classes("text-negative text-sm").mark("lang-error")
            wav = next((a for a in artifacts if a["kind"] == "audio_wav"), None)
            if task["status"] == "done" and wav is not None:
                ui.audio(download_url(view["id"], wav["path"], wav["sha256"])).classes("w-full") \
                    .mark(f"audio-{self.language}")
                with ui.row().classes("gap-2"):
                    _downloads(view["id"], view["source_filename"], self.language, artifacts)


class JobCard:
    def __init__(self, board: JobBoard, view: dict[str, Any]) -> None:
        self.board = board
        self.id = view["id"]
        self.view: dict[str, Any] | None = None  # the last view without artifacts: what tells of a change
        self.card = ui.card().classes("w-full").mark(f"job job-{self.id}")
        with self.card:
            self.head = ui.column().classes("w-full gap-1")
            self.rows = [LanguageRow(lang) for lang in view["languages"]]
        self.head_signature: Any = None

    def update(self, view: dict[str, Any]) -> None:
        self.view = _basic(view)
        artifacts = [a for a in view.get("artifacts", []) if a["language"] is None]
        head = {k: view[k] for k in ("status", "stage", "progress", "error", "source_filename")}
        if (head, artifacts) != self.head_signature:
            self.head_signature = (head, artifacts)
            self.head.clear()
            with self.head:
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(view["source_filename"]).classes("font-semibold grow").mark("job-filename")
                    ui.label(status_text(view["status"], view["stage"])) \
                        .mark(f"job-status status-{view['status']}")
                    ui.link("Review and edit", f"/jobs/{view['id']}").mark("open-job")
                    self.actions(view)
                with ui.row().classes("w-full items-center gap-2 no-wrap"):
                    ui.linear_progress(view["progress"], show_value=False).classes("grow").mark("job-progress")
                    ui.label(percent(view["progress"])).classes("text-sm w-12 text-right")
                if view["error"] and view["error"]["code"] != "language_failed":
                    ui.label(view["error"]["message"]).classes("text-negative").mark("job-error")
                if artifacts:
                    with ui.row().classes("gap-2"):
                        _downloads(view["id"], view["source_filename"], None, artifacts)
        for row in self.rows:
            row.update(view)

    def actions(self, view: dict[str, Any]) -> None:
        """What can be done with the job in its state; each button names the file for a screen reader."""
        name, status = view["source_filename"], view["status"]
        if status in ("failed", "cancelled"):
            ui.button("Retry", icon="replay", on_click=self.retry) \
                .props(f'flat dense no-caps aria-label="Retry {name}"').mark("retry-job")
        if status in CANCELLABLE:
            ui.button("Cancel", icon="stop", on_click=self.cancel) \
                .props(f'flat dense no-caps aria-label="Cancel {name}"').mark("cancel-job")
        ui.button("Delete", icon="delete", on_click=self.delete) \
            .props(f'flat dense no-caps color=negative aria-label="Delete {name}"').mark("delete-job")

    @property
    def name(self) -> str:
        return str((self.view or {}).get("source_filename", "the job"))

    # The buttons sit in the card's head, which the board redraws when the job's state changes, maybe
    # while a handler awaits: so what a handler shows afterwards goes to the page (the board's client).

    async def retry(self) -> None:
        svc = self.board.svc
        try:
            async with svc.db.session() as s:
                await actions.retry(s, LOCAL_USER_ID, self.id)
            svc.queue.enqueue(self.id)
        except Exception as exc:
            with self.board.client:
                tell(exc, "retry a job")
            return
        with self.board.client:
            ui.notify(f"Trying {self.name} again…", type="info")
        await self.board.refresh()

    async def cancel(self) -> None:
        try:
            async with self.board.svc.db.session() as s:
                await actions.cancel(s, LOCAL_USER_ID, self.id)
        except Exception as exc:
            with self.board.client:
                tell(exc, "cancel a job")
            return
        with self.board.client:
            ui.notify(f"Cancelled {self.name}. What it made so far is kept until you delete it.", type="info")
        await self.board.refresh()

    async def delete(self) -> None:
        """Asks first: deleting removes every file of the job at once."""
        with self.board.client, ui.dialog() as dialog, \
                ui.card().props('role=alertdialog aria-label="Delete the job?"'):
            ui.label(f"Delete {self.name}?").classes("text-lg font-semibold")
            ui.label("Its upload, the dubs and every download are removed now. This cannot be undone.")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Keep it", on_click=lambda: dialog.submit(False)).props("flat no-caps autofocus") \
                    .mark("keep-job")
                ui.button("Delete", icon="delete", color="negative", on_click=lambda: dialog.submit(True)) \
                    .props("no-caps").mark("confirm-delete")
        answer = await dialog
        dialog.delete()
        if not answer:
            return
        svc = self.board.svc
        try:
            async with svc.db.session() as s:
                await actions.delete(svc, s, LOCAL_USER_ID, self.id)
        except Exception as exc:
            with self.board.client:
                tell(exc, "delete a job")
            return
        with self.board.client:
            ui.notify(f"Deleted {self.name} and its files.", type="positive")
        await self.board.refresh()


def _needs_artifacts(view: dict[str, Any]) -> bool:
    return view["status"] in ("done", "failed") or any(t["status"] == "done" for t in view["languages"].values())


class JobBoard:
    """The jobs, newest first, brought up to date by a timer; a card is redrawn only where it changed."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.client = ui.context.client
        self.cards: dict[str, JobCard] = {}
        self.empty = ui.label("No jobs yet. Choose a file and press Dub.").mark("no-jobs")
        self.container = ui.column().classes("w-full gap-3").mark("jobs")
        self.busy = False

    async def _views(self) -> list[dict[str, Any]]:
        views = await self.svc.db.read(actions.list_job_views, LOCAL_USER_ID)
        async with self.svc.db.session() as s:
            out = []
            for view in views:
                card = self.cards.get(view["id"])
                if _needs_artifacts(view) and (card is None or card.view != view):
                    view = actions.job_view(await actions.get_job(s, LOCAL_USER_ID, view["id"]), detail=True)
                out.append(view)
            return out

    async def refresh(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            views = await self._views()
        except Exception:
            log.warning("could not read the jobs", exc_info=True)
            return
        finally:
            self.busy = False
        ids = {v["id"] for v in views}
        for job_id in [i for i in self.cards if i not in ids]:
            self.container.remove(self.cards.pop(job_id).card)
        for index, view in enumerate(views):
            card = self.cards.get(view["id"])
            if card is None:
                with self.container:
                    card = self.cards[view["id"]] = JobCard(self, view)
                card.card.move(self.container, target_index=index)
            if card.view != _basic(view):
                card.update(view)
        self.empty.set_visibility(not views)


# --- registration ------------------------------------------------------------------------------------

def register() -> None:
    """Declare the pages and the download route (again, each time the app is built)."""
    job_page.register()
    settings_page.register()

    @ui.page("/")
    async def home() -> None:
        svc = services()
        with frame("Dub a file"):
            board: JobBoard | None = None

            async def created() -> None:
                if board is not None:
                    await board.refresh()

            DubForm(svc, created)
            ui.label("Jobs").classes("text-xl font-semibold").props("role=heading aria-level=2")
            board = JobBoard(svc)
            await board.refresh()
            ui.timer(REFRESH_SECONDS, board.refresh)

    @app.get("/download/{job_id}/{rel:path}", include_in_schema=False)
    async def download(job_id: str, rel: str) -> FileResponse:
        """A file a job produced, found through its artifact record (nothing else in the store is served)."""
        svc = services()
        key = f"jobs/{job_id}/{rel}"
        async with svc.db.session() as s:
            job = await actions.get_job(s, LOCAL_USER_ID, job_id)
            art = next((a for a in job.artifacts if a.path == key), None)
            if art is None:
                raise NotFound(f"Job {job_id} has no file {rel!r}.", hint="Download it from the job's card.")
            path = svc.storage.local_path(key)
            if not path.is_file():
                raise NotFound(f"The file {rel!r} of job {job_id} is gone from the data folder.",
                               hint="Dub the file again.")
            ext = path.suffix.lstrip(".")
            language = f"{art.language}.voice" if art.kind == "voice_wav" else art.language
            return FileResponse(path, filename=download_name(job.source_filename, language, ext))
