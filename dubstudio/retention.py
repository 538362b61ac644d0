"""Retention: finished jobs older than a period are deleted with their files (actions.delete), by
`dubstudio purge` and by the server on start and every hour (DUBSTUDIO_RETENTION_HOURS; 0 keeps all).

A job counts as finished when it is done, failed or cancelled; its age is counted from when it finished.
Jobs waiting for typed lines, queued or running are never purged. Uploads never made into a job (sent or
not) go too once they are as old: their files would otherwise stay in storage for good.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from . import actions
from .db.models import Job, Upload, utcnow
from .errors import BadInput
from .services import Services

log = logging.getLogger(__name__)
FINISHED = ("done", "failed", "cancelled")
UNUSED = ("pending", "uploaded")  # uploads no job has taken
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Purged:
    id: str
    filename: str
    status: str
    finished_at: datetime  # an upload's: when it was asked for
    kind: str = "job"  # or "upload"


def parse_age(text: str) -> timedelta:
    """"48h", "7d", "90m", "2w" (a bare number is hours) as a timedelta."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*", text.lower())
    if not m:
        raise BadInput(f"{text!r} is not an age.", hint="Give a number and a unit, e.g. 48h, 7d or 90m.")
    return timedelta(seconds=float(m[1]) * UNITS[m[2] or "h"])


async def purge(svc: Services, older_than: timedelta, *, dry_run: bool = False) -> list[Purged]:
    """Delete (or, with `dry_run`, only list) every user's finished jobs older than `older_than`, then the
    uploads no job took that are as old."""
    cutoff = utcnow() - older_than
    finished = func.coalesce(Job.finished_at, Job.created_at)
    q = select(Job).where(Job.status.in_(FINISHED), finished < cutoff).order_by(finished, Job.id)
    unused = (select(Upload).where(Upload.status.in_(UNUSED), Upload.created_at < cutoff)
              .order_by(Upload.created_at, Upload.id))
    async with svc.db.session() as s:
        jobs = list((await s.execute(q)).scalars().all())
        out = [Purged(j.id, j.source_filename, j.status, j.finished_at or j.created_at) for j in jobs]
        if not dry_run:
            for job in jobs:
                await actions.delete(svc, s, job.user_id, job.id)
        uploads = list((await s.execute(unused)).scalars().all())
        out += [Purged(u.id, u.filename, u.status, u.created_at, "upload") for u in uploads]
        if not dry_run and uploads:
            for upload in uploads:
                upload.status = "deleted"
            await s.commit()  # recorded first: a job can no longer take them while their files go
            for upload in uploads:  # locally and in the bucket
                await asyncio.to_thread(svc.files.delete_prefix, f"uploads/{upload.id}")
    return out


async def sweep(svc: Services) -> None:
    """The server's periodic purge with the retention period in force now (the settings page may have
    changed it); a failure is logged and tried again next time."""
    hours = svc.settings.retention_hours
    if hours <= 0:
        return
    try:
        gone = await purge(svc, timedelta(hours=hours))
    except Exception:
        log.warning("the retention purge failed; it runs again within the hour", exc_info=True)
        return
    if gone:
        log.info("retention: deleted %d finished job(s) and %d unused upload(s) older than %g hours",
                 sum(p.kind == "job" for p in gone), sum(p.kind == "upload" for p in gone), hours)
