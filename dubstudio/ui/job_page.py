"""The job page `/jobs/{job_id}`: review, edit and re-make one job.

At the top, the job's progress by stage, per language, kept up to date by a timer. Then the source: its
waveform with every line as a region (click one to hear it), the whole original, and the line player.
Then a tab per language: the loudness the manifest records, the whole dub, every download, and the lines:
time, speaker, source text, the translation (editable), how the dub was fitted (sped up or overflowing
lines stand out), the original and the dub of that line, and Regenerate, which keeps the typed line,
speaks only that line and patches it into the dub at once (ready to hear within seconds), then makes the
language's other files again (the page follows that and then shows the new line and audio). Blocking file
work runs in threads; errors are told in plain words.

Markers for tests: `job-status status-<status>`, `job-progress`, `job-error`, `stages-<lang>` holding
`stage-<lang>-<stage>` with `stage-<done|current|waiting|failed|pending>`, `waveform`, `original`,
`line-player`, `panel-<lang>`, `loudness-<lang>`, `audio-<lang>`, `retry-<lang>`, `lines-<lang>`,
`download-<lang>-<wav|m4a|voice|srt|vtt|video>`, `download-manifest`; per line (n from 0)
`line-<lang>-<n>` with `fit-<lang>-<n>`, `translation-<lang>-<n>`, `regenerate-<lang>-<n>`,
`play-original-<lang>-<n>`, `play-dub-<lang>-<n>`, `regenerating-<lang>-<n>`, `previewed-<lang>-<n>`;
`not-found`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Response
from nicegui import app, events, ui

from .. import actions, languages
from ..auth.local import LOCAL_USER_ID
from ..errors import BadInput, NotFound
from ..pipeline.layout import STAGES
from ..services import Services
from .common import (
    REFRESH_SECONDS,
    UNEXPECTED,
    download_name,
    download_url,
    frame,
    percent,
    services,
    status_text,
    tell,
)

if TYPE_CHECKING:
    from ..pipeline.preview import Preview
    from .sound import Envelope

log = logging.getLogger(__name__)

# Artifact kind -> (button text, marker suffix); in this order on the page.
ARTIFACTS = {"audio_wav": ("Dub (WAV)", "wav"), "audio": ("Dub (M4A)", "m4a"), "video": ("Video", "video"),
             "voice_wav": ("Voice only (WAV)", "voice"), "captions_srt": ("Subtitles (SRT)", "srt"),
             "captions_vtt": ("Subtitles (WebVTT)", "vtt"), "video_all": ("Video, every language", "video-all"),
             "manifest": ("Manifest (JSON)", "manifest")}
STAGE_NAMES = {"ingest": "read", "synthesize": "speak", "deliver": "export"}  # the others say what they do
STATE_ICONS = {"done": ("check_circle", "positive"), "current": ("autorenew", "primary"),
               "waiting": ("hourglass_empty", "warning"), "failed": ("error", "negative"),
               "pending": ("radio_button_unchecked", "grey")}
SPEAKER_COLORS = ["rgba(25,118,210,0.18)", "rgba(156,39,176,0.18)", "rgba(0,150,136,0.18)", "rgba(245,124,0,0.18)"]
PAD_BEFORE, PAD_AFTER = 0.05, 0.15  # seconds of context around a line's clip


def clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def stage_states(task: dict[str, Any]) -> list[tuple[str, str]]:
    """Each stage of a language with its state: done, current, waiting (for the user), failed or pending."""
    status, stage = task["status"], task["stage"]
    if status == "done":
        return [(s, "done") for s in STAGES]
    if status == "queued" or stage not in STAGES:
        return [(s, "pending") for s in STAGES]
    at = STAGES.index(stage)
    now = {"running": "current", "failed": "failed"}.get(status, "waiting")
    return [(s, "done" if i < at else now if i == at else "pending") for i, s in enumerate(STAGES)]


def fit_summary(row: dict[str, Any]) -> tuple[str, str, str]:
    """(words, Quasar colour, details) for how a line's dub was fitted into its slot."""
    if "dub_start" not in row:
        return "not made yet", "grey", "This line has no dub yet."
    speed = row["stretch"] * row.get("rate", 1.0)
    details = (f"Placed {clock(row['dub_start'])}–{clock(row['dub_end'])}; voice rate ×{row.get('rate', 1.0):.2f}, "
               f"time-stretch ×{row['stretch']:.2f}, overflow {row['overflow']:.2f} s.")
    if row["overflow"] > 0:
        return f"overflow {row['overflow']:.2f} s", "negative", details + " The end was cut: shorten the line."
    if speed > 1.001:
        return f"sped up ×{speed:.2f}", "warning", details
    if row["dub_end"] <= row["dub_start"]:
        return "silent", "grey", details
    return "fits", "positive", details


def waveform_options(env: Envelope) -> dict[str, Any]:
    """An eChart of the envelope (mirrored, not clickable) and, drawn over it, a series holding the lines
    as regions (markArea, filled by `regions`), which a click can tell apart."""
    def series(sign: int) -> dict[str, Any]:
        return {"type": "line", "data": [[t, sign * p] for t, p in zip(env.times, env.peaks, strict=True)],
                "symbol": "none", "silent": True, "lineStyle": {"width": 0.6, "color": "#1976d2"},
                "areaStyle": {"color": "#1976d2", "opacity": 0.5}}
    lines = {"type": "line", "name": "lines", "data": [], "z": 5,
             "markArea": {"data": [], "label": {"position": "insideTop", "color": "#888"}}}
    return {"animation": False, "backgroundColor": "transparent",
            "grid": {"left": 8, "right": 8, "top": 18, "bottom": 24, "containLabel": True},
            "tooltip": {"trigger": "item"},
            "xAxis": {"type": "value", "min": 0, "max": round(env.duration, 3), "name": "s",
                      "axisLabel": {"color": "#888"}, "splitLine": {"show": False}},
            "yAxis": {"type": "value", "min": -1, "max": 1, "show": False},
            "series": [series(1), series(-1), lines]}


def regions(lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    speakers: dict[str, int] = {}
    out = []
    for n, row in enumerate(lines):
        color = SPEAKER_COLORS[speakers.setdefault(row["speaker"] or "", len(speakers)) % len(SPEAKER_COLORS)]
        out.append([{"name": str(n + 1), "xAxis": row["source_start"], "itemStyle": {"color": color}},
                    {"xAxis": row["source_end"]}])
    return out


def clip_url(job_id: str, track: str, row: dict[str, Any], version: str = "") -> str:
    """The clip route's address of one line: the original (`track` "source") or a language's dub."""
    start = max(0.0, row["source_start"] - PAD_BEFORE)
    end = max(row["source_end"], row.get("dub_end", 0.0)) + PAD_AFTER
    return f"/clip/{job_id}/{track}?start={start:.3f}&end={end:.3f}" + (f"&v={version[:12]}" if version else "")


async def load_view(svc: Services, job_id: str) -> dict[str, Any]:
    async with svc.db.session() as s:
        return actions.job_view(await actions.get_job(s, LOCAL_USER_ID, job_id), detail=True)


def plain_error(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    return UNEXPECTED if error["code"] == "internal_error" else str(error["message"])


def download_buttons(view: dict[str, Any], language: str | None) -> None:
    arts = {a["kind"]: a for a in view["artifacts"] if a["language"] == language}
    for kind, (text, suffix) in ARTIFACTS.items():
        art = arts.get(kind)
        if art is None:
            continue
        ext = Path(art["path"]).suffix.lstrip(".")
        tag = {"voice_wav": f"{language}.voice", "video_all": "all"}.get(kind, language)
        name = download_name(view["source_filename"], tag, ext)
        url = download_url(view["id"], art["path"], art["sha256"])
        ui.button(text, icon="download", on_click=lambda u=url, n=name: ui.download.from_url(u, n)) \
            .props("outline dense no-caps").mark(f"download-{language}-{suffix}" if language else f"download-{suffix}")


class LinePlayer:
    """One player for the line clips: set a clip and it plays (autoplay after the user's click)."""

    def __init__(self) -> None:
        self.box = ui.column().classes("w-full gap-1")
        self.audio: ui.audio | None = None
        self.caption: ui.label | None = None

    def play(self, url: str, caption: str) -> None:
        if self.audio is None or self.caption is None:
            with self.box:
                self.caption = ui.label().classes("text-sm").props('aria-live="polite"')
                self.audio = ui.audio(url, autoplay=True).classes("w-full").mark("line-player")
        elif self.audio.source == url:
            self.audio.seek(0)
            self.audio.play()
        else:
            self.audio.set_source(url)
        self.caption.set_text(f"Playing {caption}")


class SourceView:
    """The source's waveform with the lines as regions, the whole original, and the line player."""

    def __init__(self, svc: Services, job_id: str) -> None:
        self.path = svc.storage.local_path(f"jobs/{job_id}/work/source.wav")
        self.lines: list[dict[str, Any]] = []
        self.chart: ui.echart | None = None
        self.on_region: Callable[[int], None] = lambda n: None
        with ui.card().classes("w-full"):
            ui.label("Source").classes("text-lg font-semibold").props("role=heading aria-level=2")
            self.box = ui.column().classes("w-full gap-2")
            with self.box:
                self.waiting = ui.label("The waveform appears once the file is read.").classes("text-sm opacity-70")
            self.player = LinePlayer()

    async def ensure(self) -> None:
        """Draw the waveform and the original's player once the source is decoded (in a thread)."""
        if self.chart is not None or not await asyncio.to_thread(self.path.is_file):
            return
        from . import sound  # numpy and libsndfile load with the first waveform, not with the server

        env = await asyncio.to_thread(sound.envelope, self.path)
        self.waiting.delete()
        with self.box:
            self.chart = ui.echart(waveform_options(env), on_click=self.clicked).classes("w-full h-40") \
                .props('role=img aria-label="Waveform of the source with its lines"').mark("waveform")
            with ui.row().classes("w-full items-center gap-2"):
                ui.label("Original").classes("font-medium w-20")
                ui.audio(self.path).classes("grow").mark("original")
        self.show_lines(self.lines)

    def show_lines(self, lines: list[dict[str, Any]]) -> None:
        self.lines = lines
        if self.chart is not None and lines:
            self.chart.options["series"][2]["markArea"]["data"] = regions(lines)
            self.chart.update()

    def clicked(self, e: events.EChartComponentClickEventArguments) -> None:
        if e.component_type == "markArea" and (e.name or "").isdigit():
            self.on_region(int(e.name or 0) - 1)


class StageStrip:
    """One language's progress: its stages as steps, a bar, and its error in plain words."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.box = ui.column().classes("w-full gap-1").mark(f"stages-{language}")
        self.signature: Any = None

    def update(self, task: dict[str, Any], job_error: dict[str, Any] | None) -> None:
        if task == self.signature:
            return
        self.signature = task
        self.box.clear()
        with self.box:
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(languages.NAMES.get(self.language, self.language)).classes("font-medium w-28")
                ui.label(status_text(task["status"], task["stage"])).classes("grow").mark(f"status-{self.language}")
                ui.label(percent(task["progress"])).classes("text-sm")
            ui.linear_progress(task["progress"], show_value=False).mark(f"progress-{self.language}")
            with ui.row().classes("w-full gap-x-4 gap-y-1").props('role=list aria-label="Stages"'):
                for stage, state in stage_states(task):
                    icon, color = STATE_ICONS[state]
                    words = f"{STAGE_NAMES.get(stage, stage)}: {state}"
                    with ui.row().classes("items-center gap-1 text-sm").props(f'role=listitem title="{words}"') \
                            .mark(f"stage-{self.language}-{stage} stage-{state}"):
                        ui.icon(icon, color=color, size="xs").classes("animate-spin" if state == "current" else "")
                        ui.label(STAGE_NAMES.get(stage, stage)).classes("" if state != "pending" else "opacity-60")
            message = plain_error(task["error"])
            if message and message != plain_error(job_error):
                ui.label(message).classes("text-negative text-sm").mark(f"error-{self.language}")


class LanguagePanel:
    """One language's results and its lines, redrawn when the language or its files change."""

    def __init__(self, page: JobPage, language: str) -> None:
        self.page, self.language = page, language
        self.signature: Any = None
        self.rows: list[dict[str, Any]] = []
        self.inputs: dict[str, ui.textarea] = {}
        self.buttons: list[ui.button] = []
        self.pending: set[str] = set()  # lines being made again
        self.previews: dict[str, Preview] = {}  # of those, the lines already heard in the dub
        self.busy = False
        self.summary = ui.column().classes("w-full gap-2")
        self.voices = ui.row().classes("w-full items-end gap-3").mark(f"voices-{language}")
        ui.label("Lines").classes("text-lg font-semibold").props("role=heading aria-level=3")
        ui.label("Edit a translation, then Regenerate (or Ctrl+Enter): only that line is spoken again.") \
            .classes("text-sm opacity-70")
        self.lines = ui.column().classes("w-full gap-0").mark(f"lines-{language}")

    @property
    def name(self) -> str:
        return languages.NAMES.get(self.language, self.language)

    async def update(self, view: dict[str, Any]) -> None:
        task = view["languages"][self.language]
        arts = [(a["kind"], a["sha256"]) for a in view["artifacts"] if a["language"] == self.language]
        self.busy = view["status"] in ("queued", "running")
        if not self.busy:
            self.pending.clear()
            self.previews.clear()
        signature = (task["status"], task["stage"], view["status"], arts)
        if signature != self.signature:
            self.signature = signature
            entry = await self.page.manifest_entry(self.language)
            await self.draw_summary(view, task, entry)
            await self.load_lines(view, {seg["id"]: seg for seg in entry.get("segments", [])})
        for button in self.buttons:
            button.set_enabled(not self.busy)

    def dub_version(self, view: dict[str, Any]) -> str | None:
        wav = next((a for a in view["artifacts"] if a["language"] == self.language and a["kind"] == "audio_wav"), None)
        return None if wav is None else str(wav["sha256"])

    async def draw_summary(self, view: dict[str, Any], task: dict[str, Any], entry: dict[str, Any]) -> None:
        loudness = entry.get("loudness")
        self.summary.clear()
        with self.summary:
            if loudness and loudness.get("integrated_lufs") is not None:
                target = loudness.get("target_lufs")
                peak = loudness.get("true_peak_dbtp")
                ui.label(f"Loudness: {loudness['integrated_lufs']:.1f} LUFS integrated"
                         + (f" (target {target:g} LUFS)" if target is not None else "")
                         + (f", true peak {peak:.1f} dBTP" if peak is not None else "")) \
                    .classes("text-sm").mark(f"loudness-{self.language}")
            wav = next((a for a in view["artifacts"] if a["language"] == self.language and a["kind"] == "audio_wav"),
                       None)
            if wav is not None:
                if task["status"] != "done":
                    doing = "is being made again" if task["status"] in ("queued", "running") else "was not made again"
                    ui.label(f"This language {doing}; below is the dub as it was.") \
                        .classes("text-sm text-warning").mark(f"remaking-{self.language}")
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label("Dub").classes("font-medium w-20")
                    patched = list(self.previews.values())  # lines heard in it already: a new address
                    version = patched[-1].version if patched else wav["sha256"]
                    ui.audio(download_url(view["id"], wav["path"], version)).classes("grow") \
                        .mark(f"audio-{self.language}")
                with ui.row().classes("gap-2"):
                    download_buttons(view, self.language)
            if task["status"] == "failed" and view["status"] not in ("queued", "running"):
                ui.button("Try this language again", icon="replay", on_click=self.retry) \
                    .props("outline no-caps").mark(f"retry-{self.language}")

    async def load_lines(self, view: dict[str, Any], spoken: dict[str, dict[str, Any]]) -> None:
        """The lines as `language_lines` gives them; `spoken`: the manifest's segments by id (what was said)."""
        svc = self.page.svc
        try:
            async with svc.db.session() as s:
                rows = await actions.language_lines(svc.settings, s, LOCAL_USER_ID, view["id"], self.language,
                                                    svc.files)
        except BadInput:  # not transcribed yet
            rows = None
        except Exception as exc:
            log.warning("could not read the lines of %s", self.language, exc_info=exc)
            rows = None
        drafts = {i: box.value for i, box in self.inputs.items()
                  if box.value != next((r["translation"] for r in self.rows if r["id"] == i), None)}
        self.rows, self.inputs, self.buttons = rows or [], {}, []
        self.lines.clear()
        with self.lines:
            if rows is None:
                ui.label("The lines appear here once the source is transcribed.").classes("text-sm opacity-70")
                return
            version = self.dub_version(view)
            for n, row in enumerate(rows):
                said = spoken.get(row["id"], {}).get("translation") if version else None
                self.line(n, row, version, drafts.get(row["id"]), said)
        self.page.source.show_lines(rows)
        await self.draw_voices(rows or [])

    async def draw_voices(self, rows: list[dict[str, Any]]) -> None:
        """A voice per speaker, chosen from the job's voice engine for this language."""
        svc, lang = self.page.svc, self.language
        chosen = {row["speaker"]: row["voice"] for row in rows if row.get("voice")}
        try:
            async with svc.db.session() as s:
                options = dict((await actions.get_job(s, LOCAL_USER_ID, self.page.id)).options)
            offered = await asyncio.to_thread(lambda: svc.queue.engines(options).tts.voices(lang))
        except Exception as exc:  # an engine not set up: the lines still show, without a choice of voice
            log.info("no voices to offer for %s: %s", lang, exc)
            offered = []
        self.voices.clear()
        if not chosen or not offered:
            return
        with self.voices:
            ui.label("Voices").classes("font-medium")
            for n, (speaker, voice) in enumerate(chosen.items()):
                ui.select(sorted({*offered, voice}), value=voice, label=f"Speaker {speaker}",
                          on_change=lambda e, who=speaker: self.set_voice(who, str(e.value))) \
                    .props(f'dense outlined aria-label="Voice of speaker {speaker} in {self.name}"') \
                    .classes("min-w-48").mark(f"voice-{lang}-{n}")

    async def set_voice(self, speaker: str, voice: str) -> None:
        current = next((r.get("voice") for r in self.rows if r["speaker"] == speaker), None)
        if voice == current:
            return
        await self.edit(f"Speaker {speaker} now speaks {self.name} with {voice}; their lines are made again.",
                        "change a voice", voices={speaker: voice})

    async def edit_source(self, row: dict[str, Any], number: int) -> None:
        """The source text of a line, corrected: every language translates and speaks it again."""
        with self.page.client, ui.dialog() as dialog, ui.card().classes("w-[36rem] max-w-full"):
            ui.label(f"Source text of line {number}").classes("font-semibold")
            box = ui.textarea(value=row["text"]).props('autogrow outlined aria-label="Source text"') \
                .classes("w-full").mark("source-text")
            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=lambda: dialog.submit(None)).props("flat no-caps")
                ui.button("Save", on_click=lambda: dialog.submit(box.value)).props("no-caps").mark("save-source")
        text = ((await dialog) or "").strip()
        if text and text != row["text"]:
            await self.edit(f"Line {number} corrected; every language makes it again.", "correct a line",
                            texts={row["id"]: text})

    async def edit(self, done: str, doing: str, **changes: dict[str, str]) -> None:
        svc = self.page.svc
        try:
            async with svc.db.session() as s:
                await actions.edit_lines(svc.settings, s, LOCAL_USER_ID, self.page.id, self.language, {},
                                         files=svc.files, **changes)
            svc.queue.enqueue(self.page.id)
        except Exception as exc:
            with self.page.client:
                tell(exc, doing)
            return
        await self.page.refresh(wait=True)  # first: the notice appears with the job shown queued again, not done
        with self.page.client:
            ui.notify(done, type="info")

    def line(self, n: int, row: dict[str, Any], version: str | None, draft: str | None, said: str | None) -> None:
        """One line; `said`: what the dub speaks, when the translator had to shorten the line to fit."""
        lang, number = self.language, n + 1
        words, color, details = fit_summary(row)
        with ui.element("div").classes("w-full py-2 border-b border-gray-500/30 items-start") \
                .style("display:grid; grid-template-columns: 7.5rem 1fr 1fr 10.5rem; gap: 0.75rem") \
                .props(f'role=group aria-label="Line {number}"').mark(f"line-{lang}-{n}"):
            with ui.column().classes("gap-0 text-sm"):
                ui.label(f"#{number}").classes("font-semibold")
                ui.label(f"{clock(row['source_start'])}–{clock(row['source_end'])}")
                ui.label(f"Speaker {row['speaker']}" if row["speaker"] else "").classes("opacity-70")
            with ui.row().classes("items-start gap-1 no-wrap"):
                ui.label(row["text"]).classes("text-sm grow").props('lang="und"').mark(f"source-{lang}-{n}")
                ui.button(icon="edit", on_click=lambda: self.edit_source(row, number)) \
                    .props(f'flat dense round size=sm aria-label="Correct the source text of line {number}"') \
                    .tooltip("Correct the source text").mark(f"edit-source-{lang}-{n}")
            with ui.column().classes("gap-1 w-full"):
                box = ui.textarea(value=draft if draft is not None else row["translation"]) \
                    .props(f'autogrow outlined dense aria-label="{self.name} translation of line {number}" '
                           f'lang="{lang}"').classes("w-full").mark(f"translation-{lang}-{n}")
                box.on("keydown.ctrl.enter", lambda: self.regenerate(row["id"], number))
                self.inputs[row["id"]] = box
                if row["id"] in self.pending:
                    with ui.row().classes("items-center gap-1 text-sm").mark(f"regenerating-{lang}-{n}"):
                        ui.spinner(size="1em")
                        ui.label("Regenerating…")
                    if row["id"] in self.previews:
                        ui.label("Ready to hear; the downloads follow.").classes("text-xs text-positive") \
                            .mark(f"previewed-{lang}-{n}")
                else:
                    if said and said != row["translation"]:
                        ui.label(f"Spoken shorter to fit: “{said}”").classes("text-xs text-warning") \
                            .mark(f"spoken-{lang}-{n}")
                    if row["edited"]:
                        ui.label("Edited by hand").classes("text-xs opacity-70")
            with ui.column().classes("gap-1 items-start"):
                ui.badge(words, color=color).props(f'aria-label="Fit: {words}"').mark(f"fit-{lang}-{n}") \
                    .tooltip(details)
                with ui.row().classes("gap-1"):
                    ui.button(icon="hearing", on_click=lambda: self.play(row, number, None)) \
                        .props(f'flat dense round aria-label="Play the original of line {number}"') \
                        .tooltip("Original").mark(f"play-original-{lang}-{n}")
                    heard = self.previews.get(row["id"])  # the dub holds the new line already: play that,
                    dub_row, dub_version = (row, version) if heard is None else ({**row, **heard.row}, heard.version)
                    if dub_version and "dub_start" in dub_row:  # under a new address (no cached old clip)
                        ui.button(icon="record_voice_over", on_click=lambda: self.play(dub_row, number, dub_version)) \
                            .props(f'flat dense round aria-label="Play the {self.name} dub of line {number}"') \
                            .tooltip(f"{self.name} dub").mark(f"play-dub-{lang}-{n}")
                button = ui.button("Regenerate", icon="refresh",
                                   on_click=lambda: self.regenerate(row["id"], number)) \
                    .props(f'outline dense no-caps aria-label="Regenerate line {number}"') \
                    .mark(f"regenerate-{lang}-{n}")
                button.set_enabled(not self.busy)
                self.buttons.append(button)

    def play(self, row: dict[str, Any], number: int, version: str | None) -> None:
        if version is None:
            self.page.source.player.play(clip_url(self.page.id, "source", row), f"the original of line {number}")
        else:
            self.page.source.player.play(clip_url(self.page.id, self.language, row, version),
                                         f"the {self.name} dub of line {number}")

    async def regenerate(self, line_id: str, number: int) -> None:
        box = self.inputs.get(line_id)
        text = (box.value or "").strip() if box is not None else ""
        saved = next((r for r in self.rows if r["id"] == line_id), None)
        if not text:
            ui.notify(f"Type a translation for line {number} first.", type="warning")
            return
        if saved is not None and text == saved["translation"] and "dub_start" in saved:
            ui.notify(f"Line {number} is unchanged: edit its translation first.", type="info")
            return
        svc = self.page.svc
        try:
            async with svc.db.session() as s:  # the line is spoken and patched into the dub before this returns
                heard = await actions.regenerate_line(svc.settings, s, svc.queue.engines, LOCAL_USER_ID, self.page.id,
                                                      self.language, line_id, text, files=svc.files)
            svc.queue.enqueue(self.page.id)  # the language's other files, made again behind it
        except Exception as exc:
            with self.page.client:
                tell(exc, "regenerate a line")
            return
        self.pending.add(line_id)
        with self.page.client:
            ui.notify(f"Regenerating line {number} in {self.name}…", type="info")
            if heard is not None:
                self.previews[line_id] = heard
                ui.notify(f"Line {number} is ready to hear in the dub; the downloads are being made again.",
                          type="positive")
        await self.page.refresh(wait=True)

    async def retry(self) -> None:
        svc = self.page.svc
        try:
            async with svc.db.session() as s:
                await actions.retry(s, LOCAL_USER_ID, self.page.id, self.language)
            svc.queue.enqueue(self.page.id)
        except Exception as exc:
            with self.page.client:
                tell(exc, "retry a language")
            return
        with self.page.client:
            ui.notify(f"Trying {self.name} again…", type="info")
        await self.page.refresh(wait=True)


class JobPage:
    def __init__(self, svc: Services, view: dict[str, Any]) -> None:
        self.svc, self.id = svc, view["id"]
        self.client = ui.context.client  # where notices go after an await (the slot may be redrawn meanwhile)
        self.view: dict[str, Any] | None = None
        self.updating = asyncio.Lock()
        with ui.card().classes("w-full"):
            ui.label("Progress").classes("text-lg font-semibold").props("role=heading aria-level=2")
            self.head = ui.column().classes("w-full gap-1")
            self.job_downloads = ui.row().classes("gap-2")
            self.strips = [StageStrip(lang) for lang in view["languages"]]
        self.source = SourceView(svc, self.id)
        self.panels: list[LanguagePanel] = []
        langs = list(view["languages"])
        with ui.tabs().classes("w-full").props('align="left"') as tabs:
            for lang in langs:
                ui.tab(lang, languages.NAMES.get(lang, lang))
        with ui.tab_panels(tabs, value=langs[0] if langs else None).classes("w-full"):
            for lang in langs:
                with ui.tab_panel(lang).classes("gap-3").mark(f"panel-{lang}"):
                    self.panels.append(LanguagePanel(self, lang))
        self.tabs = tabs
        self.source.on_region = self.play_region

    def play_region(self, n: int) -> None:
        panel = next((p for p in self.panels if p.language == self.tabs.value), None)
        if panel is not None and 0 <= n < len(panel.rows):
            panel.play(panel.rows[n], n + 1, None)

    async def manifest_entry(self, language: str) -> dict[str, Any]:
        """What the job's manifest records for a language (empty before the job first finished)."""
        path = self.svc.storage.local_path(f"jobs/{self.id}/manifest.json")

        def read() -> dict[str, Any]:
            if not path.is_file():
                return {}
            return dict(json.loads(path.read_text("utf-8")).get("languages", {}).get(language) or {})

        try:
            return await asyncio.to_thread(read)
        except (OSError, ValueError):
            return {}

    def show(self, view: dict[str, Any]) -> None:
        head = {k: view[k] for k in ("status", "stage", "progress", "error")}
        if self.view is None or head != {k: self.view[k] for k in head}:
            self.head.clear()
            with self.head:
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(status_text(view["status"], view["stage"])).classes("font-medium grow") \
                        .mark(f"job-status status-{view['status']}")
                    ui.label(percent(view["progress"])).classes("text-sm")
                ui.linear_progress(view["progress"], show_value=False).mark("job-progress")
                message = plain_error(view["error"])
                if message and view["error"]["code"] != "language_failed":
                    ui.label(message).classes("text-negative").mark("job-error")
        for strip in self.strips:
            strip.update(view["languages"][strip.language], view["error"])
        job_files = [a for a in view["artifacts"] if a["language"] is None]
        if self.view is None or job_files != [a for a in self.view["artifacts"] if a["language"] is None]:
            self.job_downloads.clear()
            with self.job_downloads:
                download_buttons(view, None)
        self.view = view

    async def refresh(self, *, wait: bool = False) -> None:
        """The page brought up to date. The timer's call is skipped while one is under way; an edit's waits
        for it and updates the page after its change."""
        if self.updating.locked() and not wait:
            return
        async with self.updating:
            await self.update()

    async def update(self) -> None:
        try:
            view = await load_view(self.svc, self.id)
            if view != self.view:
                self.show(view)
            await self.source.ensure()
            for panel in self.panels:
                await panel.update(view)
        except NotFound:
            self.head.clear()
            with self.head:
                ui.label("This job is gone: it was deleted.").classes("text-negative").mark("job-error")
        except Exception:
            log.warning("could not bring the page of job %s up to date", self.id, exc_info=True)


def register() -> None:
    """Declare the job page and the clip route (again, each time the app is built)."""

    @ui.page("/jobs/{job_id}")
    async def job_page(job_id: str) -> None:
        svc = services()
        try:
            view = await load_view(svc, job_id)
        except NotFound:
            with frame("Job not found"):
                ui.label("There is no such job. It may have been deleted.").mark("not-found")
                ui.link("Back to all jobs", "/")
            return
        except Exception:
            log.warning("could not open the page of job %s", job_id, exc_info=True)
            with frame("Job"):
                ui.label(UNEXPECTED).classes("text-negative").mark("job-error")
                ui.link("Back to all jobs", "/")
            return
        with frame(view["source_filename"], wide=True):
            ui.link("← All jobs", "/").classes("text-sm")
            page = JobPage(svc, view)
            await page.refresh()
            ui.timer(REFRESH_SECONDS, page.refresh)

    @app.get("/clip/{job_id}/{track}", include_in_schema=False)
    async def line_clip(job_id: str, track: str, start: float, end: float) -> Response:
        """A stretch of a job's decoded source (`track` "source") or of one language's dub, as a WAV."""
        svc = services()
        async with svc.db.session() as s:
            job = await actions.get_job(s, LOCAL_USER_ID, job_id)
        if track == "source":
            path = svc.storage.local_path(f"jobs/{job_id}/work/source.wav")
        else:
            wav = next((a for a in job.artifacts if a.language == track and a.kind == "audio_wav"), None)
            if wav is None:
                raise NotFound(f"Job {job_id} has no {track!r} dub yet.", hint="Wait for the language to finish.")
            path = svc.storage.local_path(wav.path)
        if not await asyncio.to_thread(path.is_file):
            raise NotFound(f"The audio of job {job_id} is gone from the data folder.", hint="Dub the file again.")
        if not 0 <= start < end:
            raise BadInput("A clip needs 0 <= start < end.", hint="Play a line from the job page.")
        from . import sound

        data = await asyncio.to_thread(sound.clip, path, start, end)
        return Response(data, media_type="audio/wav", headers={"Cache-Control": "private, max-age=3600"})
