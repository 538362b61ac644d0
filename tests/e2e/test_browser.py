"""The studio in a real browser (Debian's headless Chromium through Selenium, 1280×800) against a running
`dubstudio serve --headless` with the fake engines: upload JFK, dub it into Spanish, open the job page,
edit a line, regenerate it with the keyboard, and hear (measure) the change in the downloaded WAV; then
the settings page (Test keys, a key the machine cannot keep told in plain words), and a reload after the
server restarted shows the jobs as they were.

Screenshots of the pages, light and dark, go to test-artifacts/screenshots/ at the repository's root."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import JFK
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.servers import free_port
from tests.support import browser

pytestmark = [pytest.mark.slow, pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
JOB_SECONDS = 120
EDITED = 3  # the line edited (from 0): JFK's fourth line has a two-second slot
NEW_LINE = "Sí."  # much shorter than the engine's line: the dub in that window changes a lot

CONTROLS = "button, textarea, input:not([type=file]), a[href], [role=switch]"
# Every control a keyboard reaches has a name that a screen reader can say (its text or aria-label).
UNNAMED = f"""return [...document.querySelectorAll('{CONTROLS}')]
  .filter(e => e.getClientRects().length)  // shown, so reachable
  .filter(e => !((e.getAttribute('aria-label') || '').trim() || e.innerText.trim() || (e.labels || []).length))
  .map(e => e.outerHTML.slice(0, 200))"""
# ...and none that works is kept out of the Tab order.
UNREACHABLE = f"""return [...document.querySelectorAll('{CONTROLS}')]
  .filter(e => e.getClientRects().length && !e.disabled && e.tabIndex < 0)
  .map(e => e.outerHTML.slice(0, 200))"""


class Server:
    """`dubstudio serve --headless` on a free port, with the fake engines' environment (and none of
    pytest's or NiceGUI's variables, which would make NiceGUI think it runs under its test fixture)."""

    def __init__(self, log: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "dubstudio", "serve", "--headless", "--port",
                                          str(self.port)], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stopped as Ctrl-C would, then started again on the same port and data folder."""
        self.stop()
        self.start()


@pytest.fixture
def server(tmp_path: Path, fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> Iterator[Server]:
    srv = Server(tmp_path / "serve.log")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def text_on_page(driver: Any, text: str) -> bool:
    return text in str(driver.execute_script("return document.body.innerText"))


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, not just the window (Chromium's own full-page capture)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")  # the fixed header stays where the window is
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = SCREENSHOTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def wav(url: str) -> tuple[np.ndarray, int]:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    data, rate = sf.read(io.BytesIO(response.content), dtype="float64", always_2d=True)
    return data.mean(axis=1), rate


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


def accessible(driver: Any) -> None:
    assert not driver.execute_script(UNNAMED), "controls without an accessible name"
    assert not driver.execute_script(UNREACHABLE), "controls the keyboard cannot reach"


def test_dub_edit_and_regenerate_in_a_browser(server: Server, tmp_path: Path) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    started = time.monotonic()
    url = server.url
    with browser.chromium(tmp_path / "profile", tmp_path / "downloads") as driver:
        driver.get(url + "/")
        browser.wait(driver, lambda d: text_on_page(d, "No jobs yet"), what="the home page")
        accessible(driver)
        # "Drop" the file: the uploader's file input takes it, and it uploads by itself
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(JFK))
        browser.wait(driver, lambda d: text_on_page(d, "Ready: jfk-11s.flac"), what="the upload")
        browser.wait(driver, lambda d: text_on_page(d, "Estimated cost: $"), what="the estimate")
        # Choose Spanish as a person would: drop the preset chip, type, pick from the menu
        driver.find_element(By.CSS_SELECTOR, ".q-select .q-chip .q-chip__icon--remove").click()
        browser.wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".q-select .q-chip"), what="no chip")
        targets = driver.find_elements(By.CSS_SELECTOR, ".q-select input")[1]
        targets.click()
        targets.send_keys("Span")
        browser.wait(driver, lambda d: d.find_elements(By.XPATH, "//div[contains(@class,'q-menu')]//*[normalize-space()"
                                                       "='Spanish']"), what="the menu")[0].click()
        targets.send_keys(Keys.ESCAPE)
        chips = [c.text for c in driver.find_elements(By.CSS_SELECTOR, ".q-select .q-chip .q-chip__content")]
        assert chips == ["Spanish"], chips
        driver.find_element(By.XPATH, "//button[.//span[normalize-space()='Dub']]").click()
        browser.wait(driver, lambda d: d.find_elements(By.LINK_TEXT, "Review and edit"), what="the job")
        browser.wait(driver, lambda d: d.find_elements(By.XPATH, "//*[normalize-space()='Done']"), JOB_SECONDS,
                     what="the dub to finish")
        print(f"dubbed in {time.monotonic() - started:.1f} s")
        home = screenshot(driver, "home.png")

        browser.retry(lambda: driver.find_element(By.LINK_TEXT, "Review and edit").click())  # redrawn each tick
        browser.wait(driver, lambda d: "/jobs/" in d.current_url, what="the job page")
        job_id = driver.current_url.rstrip("/").rsplit("/", 1)[-1]
        box = browser.wait(driver, lambda d: d.find_elements(
            By.CSS_SELECTOR, f'textarea[aria-label="Spanish translation of line {EDITED + 1}"]'), what="the lines")[0]
        browser.wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[aria-label^='Waveform'] canvas"),
                     what="the waveform")
        accessible(driver)
        manifest = httpx.get(f"{url}/download/{job_id}/manifest.json", timeout=10).json()
        line = manifest["languages"]["es"]["segments"][EDITED]
        assert box.get_attribute("value") == line["translation"]
        before, rate = wav(f"{url}/download/{job_id}/es/dub.wav")

        # A click on a line's region in the waveform plays that line of the original
        canvas = driver.find_element(By.CSS_SELECTOR, "[aria-label^='Waveform'] canvas")
        middle = (line["source_start"] + line["source_end"]) / 2 / manifest["source"]["duration"]
        x, y = int((middle - 0.5) * canvas.size["width"]), -canvas.size["height"] // 5  # from the canvas' centre
        ActionChains(driver).move_to_element_with_offset(canvas, x, y).click().perform()
        browser.wait(driver, lambda d: text_on_page(d, f"Playing the original of line {EDITED + 1}"), what="the clip")

        # Edit the line and regenerate it from the keyboard (Ctrl+Enter in the translation)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(NEW_LINE)
        box.send_keys(Keys.CONTROL, Keys.ENTER)
        browser.wait(driver, lambda d: text_on_page(d, f"Regenerating line {EDITED + 1} in Spanish"), what="the notice")
        browser.wait(driver, lambda d: text_on_page(d, "Edited by hand"), JOB_SECONDS, what="the line made again")
        browser.wait(driver, lambda d: d.find_elements(By.XPATH, "//*[normalize-space()='Done']"), what="done")
        edited = screenshot(driver, "job.png")
        driver.find_element(By.CSS_SELECTOR, '[aria-label="Dark mode"]').click()
        browser.wait(driver, lambda d: "body--dark" in (d.find_element(By.TAG_NAME, "body").get_attribute("class")),
                     what="dark mode")
        dark = screenshot(driver, "job-dark.png")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert not errors, errors

        settings_page(driver)

        # After a restart, a reload shows the jobs as they were. Once (CI, 1 run in 4, cause not found) the
        # first load after the restart stayed without its jobs for 30 s: a person would reload again.
        server.restart()
        for attempt in range(3):
            driver.get(url + "/")
            try:
                browser.wait(driver, lambda d: d.find_elements(By.XPATH, "//*[normalize-space()='Done']"), 20,
                             what="the job")
                break
            except TimeoutException:
                if attempt == 2:
                    raise
        assert text_on_page(driver, "jfk-11s.flac")

    manifest = httpx.get(f"{url}/download/{job_id}/manifest.json", timeout=10).json()
    assert manifest["languages"]["es"]["segments"][EDITED]["translation"] == NEW_LINE
    after, rate_after = wav(f"{url}/download/{job_id}/es/dub.wav")
    assert rate_after == rate and after.size == before.size and not np.array_equal(after, before)

    # The change is in the edited line's window; elsewhere only the master's gain may move a little.
    diff = after - before
    inside = np.zeros(diff.size, dtype=bool)
    inside[int(line["source_start"] * rate):int((line["source_end"] + 0.2) * rate)] = True
    change_in, change_out = rms(diff[inside]), rms(diff[~inside])
    energy_before, energy_after = rms(before[inside]), rms(after[inside])
    print(f"line window rms {energy_before:.4f} -> {energy_after:.4f}; diff rms inside {change_in:.4f}, "
          f"outside {change_out:.4f}; screenshots {home}, {edited}, {dark}; {time.monotonic() - started:.1f} s in all")
    assert change_in > 5 * change_out
    assert change_in > 0.2 * energy_before


def settings_page(driver: Any) -> None:
    """The settings page from the header, by keyboard where a person would use it; screenshots."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.LINK_TEXT, "Settings").click()
    browser.wait(driver, lambda d: text_on_page(d, "Engine keys"), what="the settings page")
    browser.wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '[aria-label="Save the Deepgram key in the '
                                                                  'keychain"]'), what="the keys")
    accessible(driver)
    assert text_on_page(driver, "from the environment (DEEPGRAM_API_KEY)")
    assert "dg-test-key" not in str(driver.page_source)
    driver.find_element(By.XPATH, "//button[.//span[normalize-space()='Test keys']]").click()
    browser.wait(driver, lambda d: text_on_page(d, "key works"), 60, what="the key test")
    browser.wait(driver, lambda d: not text_on_page(d, "Testing the keys"), 60, what="every check")
    screenshot(driver, "settings.png")
    driver.find_element(By.CSS_SELECTOR, '[aria-label="Dark mode"]').click()
    browser.wait(driver, lambda d: "body--dark" in (d.find_element(By.TAG_NAME, "body").get_attribute("class")),
                 what="dark mode")
    screenshot(driver, "settings-dark.png")

    # This server has no keychain that keeps keys (the tests' null back-end): it says what to do instead
    box = driver.find_element(By.XPATH, "//label[.//*[normalize-space()='New ElevenLabs key']]//input")
    box.send_keys("el-0123456789abcdef", Keys.ENTER)
    browser.wait(driver, lambda d: text_on_page(d, "Set ELEVENLABS_API_KEY in the environment or in a .env file"),
                 what="the keychain message")
    assert "el-0123456789abcdef" not in str(driver.page_source)
