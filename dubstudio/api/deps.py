"""Request dependencies: the services, a session, and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from ..services import Services


async def services(request: Request) -> Services:  # async: FastAPI would run a plain def in a thread
    svc: Services = request.app.state.services
    return svc


async def session(svc: Annotated[Services, Depends(services)]) -> AsyncIterator[AsyncSession]:
    async with svc.db.session() as s:
        yield s


async def current_user(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    """The caller's user id (the local user, or the Supabase user's `sub`), their row made on first sight."""
    header = request.headers.get("authorization")
    # Off the loop only where it may wait (a key set fetched): a thread hop costs more than a check.
    caller = await run_in_threadpool(svc.auth.authenticate, header) if svc.auth.may_block \
        else svc.auth.authenticate(header)
    await svc.users.ensure(svc.db.session, caller)
    return caller.user_id


ServicesDep = Annotated[Services, Depends(services)]
SessionDep = Annotated[AsyncSession, Depends(session)]
CurrentUser = Annotated[str, Depends(current_user)]
