"""The long-lived parts of a serving process, made on start-up inside its event loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .auth.base import Authenticator
from .auth.users import KnownUsers
from .config import Settings
from .runtime import Database
from .storage.active import JobFiles
from .storage.local import LocalStorage
from .tasks import Queue

if TYPE_CHECKING:
    from .storage.supabase import SupabaseStorage


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: LocalStorage  # the data folder's `storage/`: the store in local mode, staging in Supabase mode
    queue: Queue
    auth: Authenticator  # per DUBSTUDIO_AUTH
    remote: SupabaseStorage | None = None  # the bucket when DUBSTUDIO_STORAGE=supabase
    users: KnownUsers = field(default_factory=KnownUsers)

    @property
    def files(self) -> JobFiles:
        """Job files in whichever store is active."""
        return JobFiles(self.storage, self.remote)

    def close(self) -> None:
        self.auth.close()
        if self.remote is not None:
            self.remote.close()
