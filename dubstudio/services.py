"""The long-lived parts of a serving process, made on start-up inside its event loop."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .runtime import Database
from .storage.local import LocalStorage
from .tasks import Queue


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: LocalStorage
    queue: Queue
