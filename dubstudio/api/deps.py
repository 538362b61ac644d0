"""Request dependencies: the services, a session, and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth.local import check_bearer
from ..services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def session(svc: Annotated[Services, Depends(services)]) -> AsyncIterator[AsyncSession]:
    async with svc.db.session() as s:
        yield s


def current_user(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    return check_bearer(svc.settings, request.headers.get("authorization"))


ServicesDep = Annotated[Services, Depends(services)]
SessionDep = Annotated[AsyncSession, Depends(session)]
CurrentUser = Annotated[str, Depends(current_user)]
