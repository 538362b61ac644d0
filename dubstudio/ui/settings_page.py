"""The settings page `/settings`: engine keys (kept in the OS keychain, only their last characters ever
shown), "Test keys" (the checks of `dubstudio doctor`), the default engines, voices per language and
speaker, the loudness target and how long finished jobs are kept.

What the page saves goes to `settings.json` in the data folder (config.SavedSource): the next job and
the next start read it, and the running server takes it at once (live_settings.reload). A value set in
the environment or in .env wins over the file: such a field is locked here and says where it comes from.

Markers for tests: `key-<vendor>` holding `key-status-<vendor>`, `key-input-<vendor>`, `key-save-<vendor>`
and `key-remove-<vendor>`; `test-keys`, `checks` holding `check check-ok|check-fail`; `default-stt`,
`default-translator`, `default-tts`, `openai-base-url`, `openai-model`, `premium-voices`, `voices` holding
`voice-row` (`voice-language`, `voice-speaker`, `voice-name`, `remove-voice`), `add-voice`,
`loudness-target`, `retention-hours`, `save-settings`, `saved-where`, `locked-<field>`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nicegui import run, ui
from pydantic import ValidationError

from ..config import KEYRING_SERVICE, SAVED_FIELDS, SAVED_FILE, Settings, check_saved, read_saved, write_saved
from ..doctor import KEYS, Check
from ..doctor import run as doctor_checks
from ..errors import DubError
from ..services import Services
from . import engines, live_settings
from .common import UNEXPECTED, frame, language_options, services

log = logging.getLogger(__name__)

LABELS = {"stt": "Speech to text", "translator": "Translator", "tts": "Voices", "premium_voices": "Premium voices",
          "openai_base_url": "OpenAI-compatible server address", "openai_model": "Translation model",
          "voices": "Voices per language and speaker", "loudness_target": "Loudness target",
          "retention_hours": "Keep finished jobs for"}


def heading(text: str) -> None:
    ui.label(text).classes("text-lg font-semibold").props("role=heading aria-level=2")


def hint(text: str) -> ui.label:
    return ui.label(text).classes("text-sm opacity-80")


def where(source: str) -> str:
    """doctor.key_source's answer in the page's words."""
    if source == "not set":
        return "no key yet"
    return f"from the {source}" if source.startswith(("environment", "keychain")) else f"from {source}"


class KeysCard:
    """One row per vendor: the key as far as it may be shown, where it comes from, a field for a new
    one (saved to the keychain) and, for a key in the keychain, Remove. Then Test keys."""

    def __init__(self, page: SettingsPage) -> None:
        self.page = page
        self.client = ui.context.client  # a key's row is redrawn after a save: notices go to the page
        with ui.card().classes("w-full"):
            heading("Engine keys")
            hint(f"A key saved here is kept in this computer's keychain (service “{KEYRING_SERVICE}”) and never "
                 "shown again in full. A key set in the environment or in .env wins over the keychain.")
            self.rows = ui.column().classes("w-full gap-2")
            with ui.row().classes("items-center gap-3"):
                self.test_button = ui.button("Test keys", icon="fact_check", on_click=self.test) \
                    .props("no-caps").mark("test-keys")
                hint("Checks the default engines below with one cheap call each, as `dubstudio doctor` does.")
            self.checks = ui.column().classes("w-full gap-1").props('aria-live="polite"').mark("checks")

    async def draw(self) -> None:
        settings = self.page.svc.settings
        infos = await run.io_bound(lambda: [live_settings.key_info(settings, v) for v in KEYS])
        self.rows.clear()
        with self.rows:
            for info in infos or []:
                self.row(info)

    def row(self, info: live_settings.KeyInfo) -> None:
        vendor = info.vendor
        with ui.row().classes("w-full items-center gap-3").mark(f"key-{vendor}"):
            ui.label(info.title).classes("font-medium w-24")
            ui.label(f"{info.shown}, {where(info.source)}").classes("text-sm grow min-w-[14rem]") \
                .mark(f"key-status-{vendor}")
            box = ui.input(f"New {info.title} key", password=True) \
                .props('dense outlined autocomplete=off spellcheck=false').classes("w-64").mark(f"key-input-{vendor}")
            box.on("keydown.enter", lambda: self.save(info, box))
            ui.button("Save key", icon="key", on_click=lambda: self.save(info, box)) \
                .props(f'outline no-caps aria-label="Save the {info.title} key in the keychain"') \
                .mark(f"key-save-{vendor}")
            if info.in_keychain:
                ui.button("Remove", icon="delete", on_click=lambda: self.remove(info)) \
                    .props(f'flat no-caps aria-label="Remove the {info.title} key from the keychain"') \
                    .mark(f"key-remove-{vendor}")

    async def save(self, info: live_settings.KeyInfo, box: ui.input) -> None:
        value = (box.value or "").strip()
        box.value = ""  # the page keeps no copy of the key
        if not value:
            ui.notify(f"Type the {info.title} key first.", type="warning")
            return
        stored = await run.io_bound(live_settings.store_key, info.field, value)
        with self.client:
            await self.tell_saved(info, bool(stored))

    async def tell_saved(self, info: live_settings.KeyInfo, stored: bool) -> None:
        if not stored:
            ui.notify("This computer has no keychain that keeps keys (a headless Linux machine often has none). "
                      f"Set {info.variable} in the environment or in a .env file instead.",
                      type="negative", multi_line=True)
            return
        await self.page.reload()
        now = await run.io_bound(live_settings.key_info, self.page.svc.settings, info.vendor)
        source = now.source if now is not None else info.source
        if source.startswith("keychain"):
            ui.notify(f"The {info.title} key is saved in the keychain.", type="positive")
        else:
            ui.notify(f"The {info.title} key is saved in the keychain, but the one {where(source)} wins over it.",
                      type="warning", multi_line=True)
        await self.draw()

    async def remove(self, info: live_settings.KeyInfo) -> None:
        removed = await run.io_bound(live_settings.forget_key, info.field)
        with self.client:
            if not removed:
                ui.notify(f"The keychain would not remove the {info.title} key.", type="negative")
                return
            await self.page.reload()
            ui.notify(f"The {info.title} key is removed from the keychain.", type="info")
            await self.draw()

    async def test(self) -> None:
        self.test_button.disable()
        self.checks.clear()
        with self.checks, ui.row().classes("items-center gap-2"):
            ui.spinner(size="1em")
            ui.label("Testing the keys…")
        try:
            checks = await run.io_bound(self.run_checks)
        except Exception:
            log.warning("the key test failed unexpectedly", exc_info=True)
            checks = None
        finally:
            self.test_button.enable()
        self.checks.clear()
        with self.checks:
            if checks is None:
                ui.label(UNEXPECTED).classes("text-negative")
                return
            for c in checks:
                self.result(c)

    def run_checks(self) -> list[Check]:
        return doctor_checks(live_settings.reload(self.page.svc))  # what the next job would use

    @staticmethod
    def result(c: Check) -> None:
        icon, color = ("check_circle", "positive") if c.ok else ("error", "negative")
        key = "" if c.key == "none needed" else f" (key {where(c.key)})"
        with ui.row().classes("w-full items-start gap-2 no-wrap").mark(f"check check-{'ok' if c.ok else 'fail'}"):
            ui.icon(icon, color=color, size="sm").props(f'aria-label="{"works" if c.ok else "fails"}"')
            with ui.column().classes("gap-0"):
                ui.label(f"{c.role.capitalize()}: {engines.NAMES.get(c.engine, c.engine)}{key}") \
                    .classes("font-medium")
                ui.label(c.detail).classes("text-sm" + ("" if c.ok else " text-negative"))


class VoiceRows:
    """The `voices` setting as rows: language, speaker, voice."""

    def __init__(self, voices: dict[str, dict[str, str]], enabled: bool) -> None:
        self.enabled = enabled
        self.rows: list[tuple[ui.element, ui.select, ui.input, ui.input]] = []
        self.box = ui.column().classes("w-full gap-1").mark("voices")
        for language, speakers in sorted(voices.items()):
            for speaker, voice in sorted(speakers.items()):
                self.add(language, speaker, voice)
        self.add_button = ui.button("Add a voice", icon="add", on_click=lambda: self.add("es", "S1", "")) \
            .props("outline no-caps").mark("add-voice")
        self.add_button.set_enabled(enabled)

    def add(self, language: str, speaker: str, voice: str) -> None:
        n = len(self.rows) + 1
        with self.box, ui.row().classes("w-full items-center gap-2 no-wrap").mark("voice-row") as row:
            lang = ui.select(language_options(), value=language, label="Language", with_input=True) \
                .classes("w-48").mark("voice-language")
            who = ui.input("Speaker", value=speaker).props("dense").classes("w-24").mark("voice-speaker")
            name = ui.input("Voice", value=voice, placeholder="e.g. es+m3").props("dense").classes("grow") \
                .mark("voice-name")
            entry = (row, lang, who, name)
            ui.button(icon="close", on_click=lambda: self.remove(entry)) \
                .props(f'flat round dense aria-label="Remove voice {n}"').mark("remove-voice")
            for element in (lang, who, name):
                element.set_enabled(self.enabled)
        self.rows.append(entry)

    def remove(self, entry: tuple[ui.element, ui.select, ui.input, ui.input]) -> None:
        self.rows.remove(entry)
        entry[0].delete()

    def value(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for _, lang, who, name in self.rows:
            speaker, voice = (who.value or "").strip(), (name.value or "").strip()
            if lang.value and speaker and voice:
                out.setdefault(str(lang.value), {})[speaker] = voice
        return out


class SettingsPage:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        s = svc.settings
        self.fields: dict[str, Callable[[], Any]] = {}  # field -> how to read its value from the page
        self.keys = KeysCard(self)

        with ui.card().classes("w-full"):
            heading("Default engines")
            hint("What a new job uses unless it chooses otherwise on the home page.")
            with ui.element("div").classes("w-full grid grid-cols-1 md:grid-cols-3 gap-4"):
                for role, words in engines.ROLES.items():
                    with ui.column().classes("gap-0"):
                        select = ui.select(engines.ENGINES[role], value=getattr(s, role), label=words) \
                            .classes("w-full").mark(f"default-{role}")
                        self.lock(role, select)
                        need = ui.label().classes("text-sm text-warning")
                        select.on_value_change(lambda e, label=need: self.explain(label, e.value))
                        self.explain(need, select.value)
            with ui.row().classes("w-full items-start gap-4"):
                with ui.column().classes("gap-0 grow"):
                    url = ui.input(LABELS["openai_base_url"], value=s.openai_base_url,
                                   placeholder="empty: OpenAI's; e.g. http://localhost:11434/v1 for Ollama") \
                        .classes("w-full").mark("openai-base-url")
                    self.lock("openai_base_url", url)
                with ui.column().classes("gap-0 w-64"):
                    model = ui.input(LABELS["openai_model"], value=s.openai_model).classes("w-full") \
                        .mark("openai-model")
                    self.lock("openai_model", model)
            premium = ui.switch("Allow the ElevenLabs voices (premium)", value=s.premium_voices) \
                .mark("premium-voices")
            self.lock("premium_voices", premium)

        with ui.card().classes("w-full"):
            heading(LABELS["voices"])
            hint("Speakers are named S1, S2… as the transcript has them. A voice's name depends on the engine: "
                 "espeak-ng `es+m3`, Deepgram `aura-2-celeste-es`, ElevenLabs a voice id. Unset: the engine's "
                 "voices in turn, one per speaker.")
            locked = self.locked_by("voices")
            self.voices = VoiceRows(s.voices, enabled=locked is None)
            self.fields["voices"] = self.voices.value

        with ui.card().classes("w-full"):
            heading("Sound and storage")
            with ui.element("div").classes("w-full grid grid-cols-1 md:grid-cols-2 gap-6"):
                with ui.column().classes("gap-0"):
                    loudness = ui.number(LABELS["loudness_target"], value=s.loudness_target, min=-31, max=-5,
                                         step=0.5, suffix="LUFS").classes("w-48").mark("loudness-target")
                    hint("-16 for the web, -23 for broadcast.")
                    self.lock("loudness_target", loudness)
                with ui.column().classes("gap-0"):
                    keep = ui.number(LABELS["retention_hours"], value=s.retention_hours, min=0, step=1,
                                     suffix="hours").classes("w-48").mark("retention-hours")
                    hint("0 keeps them forever. Older finished jobs are deleted with their files, when the "
                         "app starts and every hour.")
                    self.lock("retention_hours", keep)

        with ui.row().classes("w-full items-center gap-4"):
            ui.button("Save settings", icon="save", on_click=self.save).props("no-caps").mark("save-settings")
            hint(f"Saved in {s.data_dir / SAVED_FILE}, read by the next job and the next start. An environment "
                 "variable or a .env entry wins over a value saved here: such fields are locked and say where "
                 "their value comes from. A separate `dubstudio worker` reads the file when it starts.") \
                .classes("grow w-0").mark("saved-where")

    def locked_by(self, field: str) -> str | None:
        source = live_settings.origin(field)
        if source is not None:
            ui.label(f"Set by {source}: that value wins over this page.").classes("text-sm text-warning") \
                .mark(f"locked-{field}")
        return source

    def lock(self, field: str, element: Any) -> None:
        """Read `field` from `element` on Save, unless the environment or .env decides it."""
        if self.locked_by(field) is not None:
            element.disable()
        else:
            self.fields[field] = lambda: element.value

    def explain(self, label: ui.label, engine: str) -> None:
        need = engines.missing(self.svc.settings, engine)
        label.set_text(f"Needs {need}." if need else "")

    async def reload(self) -> None:
        await run.io_bound(live_settings.reload, self.svc)

    def collect(self) -> dict[str, Any]:
        """The page's values over what was saved before (locked fields keep their saved value); values
        equal to the built-in default are left out, so the file holds only real choices."""
        values: dict[str, Any] = dict(read_saved(self.svc.settings.data_dir))
        for field, read in self.fields.items():
            value = read()
            if isinstance(value, str):
                value = value.strip()
            try:
                value = check_saved(field, value)
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"]
                raise DubError(f"{LABELS[field]}: {problem[:1].lower()}{problem[1:]}.",
                               hint="Correct it and save again.") from None
            default = Settings.model_fields[field].get_default(call_default_factory=True)
            values[field] = None if value == default else value
        return {k: v for k, v in values.items() if k in SAVED_FIELDS and v is not None}

    async def save(self) -> None:
        try:
            values = self.collect()
            await run.io_bound(write_saved, self.svc.settings.data_dir, values)
            await self.reload()
        except DubError as err:
            ui.notify(str(err), type="negative", multi_line=True)
            return
        except OSError as err:
            ui.notify(f"The settings could not be saved in the data folder ({err.strerror}). Check that "
                      "the folder is writable and try again.", type="negative", multi_line=True)
            return
        except Exception:
            log.warning("could not save the settings", exc_info=True)
            ui.notify(UNEXPECTED, type="negative")
            return
        ui.notify("Saved. The next job uses these settings.", type="positive")


def register() -> None:
    """Declare the settings page (again, each time the app is built)."""

    @ui.page("/settings")
    async def settings_page() -> None:
        with frame("Settings"):
            page = SettingsPage(services())
            await page.keys.draw()
