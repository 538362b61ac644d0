"""NiceGUI's main file for the `user` test fixture: the app as `dubstudio serve` builds it.

The fixture runs this file afresh for each test (after dropping every route), so build() registers the
pages and routes again. Settings come from the environment the autouse `isolated_env` fixture sets.

The fixture runs this file inside its event loop, while build() migrates the database synchronously
(it must run before a loop starts), so build() runs on a short-lived thread without a loop.
"""

from concurrent.futures import ThreadPoolExecutor

from nicegui import ui

from dubstudio.app import build
from dubstudio.config import Settings

if __name__ in {"__main__", "__mp_main__"}:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(build, Settings()).result()
    ui.run()  # returns at once under the user simulation
