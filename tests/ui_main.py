"""NiceGUI's main file for the `user` test fixture: the app as `dubstudio serve` builds it.

The fixture runs this file afresh for each test (after dropping every route), so build() registers the
pages and routes again. Settings come from the environment the autouse `isolated_env` fixture sets.
"""

from nicegui import ui

from dubstudio.app import build
from dubstudio.config import Settings

if __name__ in {"__main__", "__mp_main__"}:
    build(Settings())
    ui.run()  # returns at once under the user simulation
