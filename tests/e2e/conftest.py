"""What the end-to-end tests share: a running `dubstudio serve --headless` with the module's `env`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import Server


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    s = Server(env).start()
    yield s
    s.stop()
