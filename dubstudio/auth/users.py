"""The `User` row behind a caller: made the first time a caller is seen (Supabase users sign up with
Supabase, not with us), then remembered, so later requests cost no query."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import User
from ..errors import StorageError
from .base import Caller


class KnownUsers:
    """Callers whose row exists, per process. Safe for concurrent first requests of one user: the
    losing insert's IntegrityError is expected, and the row is then there."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    async def ensure(self, sessions: async_sessionmaker[AsyncSession], caller: Caller) -> None:
        if caller.user_id in self._seen:
            return
        # With the email first; without it when the email is taken by another row (the same address
        # signed up again as a new Supabase user): the email is for display only.
        for email in dict.fromkeys((caller.email, None)):
            async with sessions() as s:
                if await s.get(User, caller.user_id) is not None:
                    break
                s.add(User(id=caller.user_id, email=email))
                try:
                    await s.commit()
                    break
                except IntegrityError:
                    await s.rollback()  # a concurrent first request won, or the email clashed: look again
        else:
            async with sessions() as s:
                if await s.get(User, caller.user_id) is None:
                    raise StorageError("Your account could not be recorded.", hint="Try again in a moment.")
        self._seen.add(caller.user_id)
