"""Files the app serves itself at signed URLs (no bearer token: the signature is the permission).

`PUT /api/v1/files/uploads/<id>/<name>`: the bytes of a pending upload (local storage), streamed to disk.
`GET /api/v1/files/jobs/<id>/...`: a deliverable, once per URL (a Range header is honoured on that use);
in Supabase mode, a redirect to a short-lived URL of the bucket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from .. import transfers
from ..errors import NotFound
from ..storage.base import safe_key
from .deps import ServicesDep, SessionDep
from .schemas import ErrorBody, UploadOut

SIGNED = {"description": "The URL's `expires`, `nonce` and `signature` query parameters, as the API gave them."}
router = APIRouter(prefix="/files", tags=["files"], responses={
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 422)})


@router.put("/{key:path}", response_model=UploadOut, openapi_extra={
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary"}}}}, "x-signed-url": SIGNED})
async def put_upload(key: str, request: Request, svc: ServicesDep, session: SessionDep) -> dict[str, Any]:
    """Step 2 of the direct-upload flow (local storage): the file's bytes as the body, at the signed URL."""
    upload = await transfers.receive_upload(svc, session, safe_key(key), dict(request.query_params),
                                            request.stream())
    return {"id": upload.id, "kind": upload.kind, "status": upload.status, "size": upload.size,
            "sha256": upload.sha256, "content_type": upload.content_type}


@router.get("/{key:path}", response_class=Response, responses={
    200: {"content": {"application/octet-stream": {}}, "description": "The file (206 for a Range)."},
    307: {"description": "Supabase mode: where the file is."}}, openapi_extra={"x-signed-url": SIGNED})
async def get_download(key: str, request: Request, svc: ServicesDep, session: SessionDep) -> Response:
    """A deliverable at a single-use signed URL from `POST /jobs/{id}/downloads`."""
    artifact = await transfers.spend_download(svc, session, safe_key(key), dict(request.query_params))
    name = Path(artifact.path).name
    if svc.remote is not None:
        url = await asyncio.to_thread(svc.remote.signed_download_url, artifact.path, transfers.REDIRECT_TTL,
                                      download_as=name)
        return RedirectResponse(url, status_code=307)
    path = svc.storage.local_path(artifact.path)
    if not path.is_file():
        raise NotFound("This file is gone.", hint="Its job was deleted or made again; ask for a new link.")
    return FileResponse(path, filename=name, content_disposition_type="attachment")
