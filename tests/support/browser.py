"""Debian's Chromium, headless, driven through Debian's chromedriver by Selenium.

The driver path is given, so Selenium Manager never runs (it would try to download a browser or a
driver); chromium and chromium-driver come from the same Debian source, so their versions always match.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,800", "--lang=en-US"]
T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            return f"{path} is missing: apt-get install -y {package}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install selenium (a dev dependency)"
    return None


@contextmanager
def chromium(profile: Path, downloads: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own --user-data-dir), saving downloads to `downloads`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile.mkdir(parents=True, exist_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages for get_log("browser")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Callable[[Any], T], timeout: float = 30, what: str = "") -> T:
    """Selenium's wait, with a message telling what did not happen."""
    from selenium.webdriver.support.ui import WebDriverWait

    result: T = WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, what)
    return result


def by_label(driver: Any, label: str) -> Any:
    """The element a person (or a screen reader) finds by its accessible name."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[aria-label="{label}"]')


def retry(action: Callable[[], T], attempts: int = 5) -> T:
    """Do `action` again when the element it found was redrawn meanwhile (the pages redraw what changed)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(attempts - 1):
        try:
            return action()
        except StaleElementReferenceException:
            continue
    return action()
