"""A fake Supabase (Auth and Storage) speaking the real REST protocol over loopback, for supabase-py,
PyJWT's and our own HTTP clients.

Auth:
* `GET /auth/v1/.well-known/jwks.json`: the project's public keys: ES256 keys derived deterministically
  (the same in every process) and one RS256 key made per fake. `rotate()` publishes a new ES256 key and
  signs with it from then on; `jwks_down` makes the endpoint answer 503.
* `GET /auth/v1/user`: the user of a valid access token (HS256 with `jwt_secret`, or a published key),
  as supabase-py's `auth.get_user` expects; 401 `bad_jwt` otherwise.
* `token(...)` mints access tokens as Supabase does (`aud`, `iss`, `sub`, `email`, `role`, `exp`...), with
  options for an expired token, a wrong audience or issuer, another user, a foreign key, a missing claim.

Storage (one dict of objects; every call but the two signed ones needs `Authorization: Bearer
<service_key>`; errors are `{"statusCode", "error", "message"}` bodies, as Supabase sends them):
* `POST /storage/v1/object/upload/sign/{bucket}/{path}` → `{"url": "/object/upload/sign/...?token=T", "token"}`;
  `PUT` of that URL with the token stores the body (multipart field `file`, or the raw bytes);
* `POST /storage/v1/object/sign/{bucket}/{path}` `{"expiresIn"}` → `{"signedURL"}`; `GET` of it → the bytes;
* `GET/POST/PUT/DELETE /storage/v1/object/{bucket}/{path}`; `DELETE /storage/v1/object/{bucket}`
  `{"prefixes": [...]}` (exact names, as Supabase); `POST /storage/v1/object/list/{bucket}` (one folder
  level: files, then sub-folders with `id: null`); `GET /storage/v1/object/info/{bucket}/{path}`.

`calls` counts requests per endpoint; `fail_next` queues HTTP statuses for the next storage calls.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.datastructures import UploadFile

from tests.fakes.servers import serve

JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
SERVICE_KEY = "fake-service-role-key"
BUCKET = "dubstudio"
USER_ID = "8d0fd2b3-9ca7-4f2c-9b5e-6f1c0a6a0001"
OTHER_USER_ID = "8d0fd2b3-9ca7-4f2c-9b5e-6f1c0a6a0002"
USERS = {USER_ID: "creator@example.com", OTHER_USER_ID: "other@example.com"}
_EC_SEED = 0x5EED_D0B5_70D1_0000  # keys are derived from this: the same in every process


def ec_key(n: int) -> ec.EllipticCurvePrivateKey:
    """The n-th deterministic P-256 key (n=999 is never published: a foreign key)."""
    return ec.derive_private_key(_EC_SEED + n, ec.SECP256R1())


def _public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = ECAlgorithm if alg == "ES256" else RSAAlgorithm
    jwk: dict[str, Any] = algo.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig", "key_ops": ["verify"], "ext": True}


def _err(status: int, error: str, message: str, http_status: int | None = None) -> JSONResponse:
    """Supabase Storage's error shape (it often answers HTTP 400 with the real status in the body)."""
    return JSONResponse({"statusCode": str(status), "error": error, "message": message},
                        status_code=http_status or status)


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def info(self, bucket: str, name: str) -> dict[str, Any]:
        return {"id": self.id, "name": name, "bucket_id": bucket, "version": self.id, "size": len(self.data),
                "content_type": self.content_type, "cache_control": "max-age=3600",
                "etag": f'"{hashlib.md5(self.data).hexdigest()}"', "created_at": self.created_at,
                "updated_at": self.created_at, "last_modified": self.created_at,
                "metadata": {"size": len(self.data), "mimetype": self.content_type}}


@dataclass
class FakeSupabase:
    url: str = "http://testserver"  # set by running()
    jwt_secret: str = JWT_SECRET
    service_key: str = SERVICE_KEY
    buckets: set[str] = field(default_factory=lambda: {BUCKET})
    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    fail_next: list[int] = field(default_factory=list)
    jwks_down: bool = False
    upload_requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ec_keys: dict[str, ec.EllipticCurvePrivateKey] = {"fake-ec-0": ec_key(0)}
        self.signing_kid = "fake-ec-0"
        self._rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._upload_tokens: dict[str, tuple[str, str, float, bool]] = {}

    # -- test helpers -----------------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve on a loopback port; `url` is the base URL (Supabase's project URL) while it runs."""
        with serve(self.app()) as url:
            self.url = url
            yield url

    def reset(self) -> None:
        self.objects.clear()
        self.calls.clear()
        self.fail_next.clear()
        self.upload_requests.clear()
        self.jwks_down = False
        self._ec_keys = {"fake-ec-0": ec_key(0)}
        self.signing_kid = "fake-ec-0"
        self._upload_tokens.clear()

    def rotate(self) -> str:
        """Publish a new ES256 key and sign new tokens with it (the old one stays published)."""
        n = len(self._ec_keys)
        kid = f"fake-ec-{n}"
        self._ec_keys[kid] = ec_key(n)
        self.signing_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = [_public_jwk(k, kid, "ES256") for kid, k in self._ec_keys.items()]
        return {"keys": [*keys, _public_jwk(self._rsa, "fake-rsa-0", "RS256")]}

    def token(self, sub: str = USER_ID, email: str | None = None, *, alg: str = "ES256", ttl: int = 3600,
              expired: bool = False, audience: str | list[str] = "authenticated", issuer: str | None = None,
              kid: str | None = None, secret: str | None = None, foreign_key: bool = False,
              claims: dict[str, Any] | None = None, omit: tuple[str, ...] = ()) -> str:
        """An access token as Supabase Auth issues it. `expired`: it ended an hour ago; `foreign_key`: signed
        by a key that is not published (under a published kid); `omit`: claims to leave out."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": issuer if issuer is not None else f"{self.url}/auth/v1", "sub": sub, "aud": audience,
            "exp": now - 3600 if expired else now + ttl, "iat": now - 7200 if expired else now,
            "email": email if email is not None else USERS.get(sub, "someone@example.com"), "phone": "",
            "role": "authenticated", "aal": "aal1", "session_id": str(uuid.uuid4()), "is_anonymous": False,
            "app_metadata": {"provider": "email", "providers": ["email"]}, "user_metadata": {},
            **(claims or {})}
        for name in omit:
            body.pop(name, None)
        if alg == "HS256":
            return jwt.encode(body, secret or self.jwt_secret, algorithm="HS256", headers={"typ": "JWT"})
        if alg == "RS256":
            return jwt.encode(body, self._rsa, algorithm="RS256", headers={"kid": kid or "fake-rsa-0", "typ": "JWT"})
        kid = kid or self.signing_kid
        key = ec_key(999) if foreign_key else self._ec_keys.get(kid, ec_key(999))
        return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid, "typ": "JWT"})

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", bucket: str = BUCKET) -> None:
        self.objects[(bucket, key)] = StoredObject(data, content_type)

    def get(self, key: str, bucket: str = BUCKET) -> bytes | None:
        obj = self.objects.get((bucket, key))
        return obj.data if obj else None

    def keys(self, bucket: str = BUCKET) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket)

    # -- checks -----------------------------------------------------------------------------------------

    def _user_claims(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "HS256":
                key: Any = self.jwt_secret
            elif header.get("kid") == "fake-rsa-0":
                key = self._rsa.public_key()
            else:
                key = self._ec_keys[header["kid"]].public_key()
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[header["alg"]], audience="authenticated",
                                                issuer=f"{self.url}/auth/v1")
            return claims
        except (jwt.PyJWTError, KeyError):
            return None

    def _service(self, request: Request) -> JSONResponse | None:
        """None when the request may go on; else the error to answer with."""
        if self.fail_next:
            status = self.fail_next.pop(0)
            return _err(status, "InternalError" if status >= 500 else "Error", f"injected fault {status}")
        if request.headers.get("authorization") != f"Bearer {self.service_key}":
            return _err(403, "Unauthorized", "invalid signature", 400)
        return None

    def _bucket(self, bucket: str) -> JSONResponse | None:
        return None if bucket in self.buckets else _err(404, "Bucket not found", "Bucket not found", 400)

    def _missing(self) -> JSONResponse:
        return _err(404, "not_found", "Object not found", 400)

    async def _body(self, request: Request) -> tuple[bytes, str]:
        """The file of an upload: multipart (supabase-py, supabase-js) or the raw body (fetch, curl)."""
        ctype = request.headers.get("content-type", "application/octet-stream")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            for value in form.values():
                if isinstance(value, UploadFile):
                    return await value.read(), value.content_type or "application/octet-stream"
            return b"", "application/octet-stream"
        return await request.body(), ctype

    def _store(self, bucket: str, path: str, data: bytes, ctype: str, upsert: bool) -> JSONResponse:
        if (bucket, path) in self.objects and not upsert:
            return _err(409, "Duplicate", "The resource already exists", 400)
        self.objects[(bucket, path)] = StoredObject(data, ctype)
        return JSONResponse({"Key": f"{bucket}/{path}", "Id": self.objects[(bucket, path)].id})

    # -- the app ----------------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.get("/auth/v1/.well-known/jwks.json")
        async def jwks() -> JSONResponse:
            self.calls["jwks"] += 1
            if self.jwks_down:
                return JSONResponse({"message": "unavailable"}, 503)
            return JSONResponse(self.jwks(), headers={"Cache-Control": "public, max-age=600"})

        @api.get("/auth/v1/user")
        async def user(request: Request) -> JSONResponse:
            self.calls["user"] += 1
            if not request.headers.get("apikey"):
                return JSONResponse({"message": "No API key found in request"}, 401)
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            claims = self._user_claims(token) if scheme.lower() == "bearer" else None
            if claims is None:
                return JSONResponse({"code": 403, "error_code": "bad_jwt",
                                     "msg": "invalid JWT: unable to parse or verify signature"}, 403)
            created = datetime.fromtimestamp(claims.get("iat", 0), UTC).isoformat()
            return JSONResponse({
                "id": claims["sub"], "aud": "authenticated", "role": "authenticated", "email": claims.get("email"),
                "email_confirmed_at": created, "phone": "", "confirmed_at": created, "last_sign_in_at": created,
                "app_metadata": claims.get("app_metadata", {}), "user_metadata": claims.get("user_metadata", {}),
                "identities": [], "created_at": created, "updated_at": created, "is_anonymous": False})

        @api.post("/storage/v1/object/upload/sign/{bucket}/{path:path}")
        async def upload_sign(bucket: str, path: str, request: Request) -> JSONResponse:
            self.calls["upload_sign"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            token = secrets.token_urlsafe(24)
            upsert = request.headers.get("x-upsert", "false") == "true"
            self._upload_tokens[token] = (bucket, path, time.time() + 7200, upsert)
            return JSONResponse({"url": f"/object/upload/sign/{bucket}/{quote(path)}?token={token}", "token": token})

        @api.put("/storage/v1/object/upload/sign/{bucket}/{path:path}")
        async def upload_signed(bucket: str, path: str, request: Request) -> JSONResponse:
            self.calls["upload_put"] += 1
            grant = self._upload_tokens.get(request.query_params.get("token", ""))
            if grant is None or grant[:2] != (bucket, path) or grant[2] < time.time():
                return _err(400, "InvalidSignature", "The signature is invalid or expired", 400)
            data, ctype = await self._body(request)
            self.upload_requests.append({"key": path, "content_type": request.headers.get("content-type", ""),
                                         "bytes": len(data)})
            return self._store(bucket, path, data, ctype, grant[3])

        @api.post("/storage/v1/object/sign/{bucket}/{path:path}")
        async def sign(bucket: str, path: str, request: Request) -> JSONResponse:
            self.calls["sign"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            if (bucket, path) not in self.objects:
                return self._missing()
            body = await request.json()
            expires = int(time.time()) + int(body["expiresIn"])
            token = jwt.encode({"url": f"{bucket}/{path}", "iat": int(time.time()), "exp": expires},
                               self.jwt_secret, algorithm="HS256")
            return JSONResponse({"signedURL": f"/object/sign/{bucket}/{quote(path)}?token={token}"})

        @api.get("/storage/v1/object/sign/{bucket}/{path:path}")
        async def signed_get(bucket: str, path: str, request: Request) -> Response:
            self.calls["signed_get"] += 1
            try:
                grant = jwt.decode(request.query_params.get("token", ""), self.jwt_secret, algorithms=["HS256"])
            except jwt.ExpiredSignatureError:
                return _err(400, "InvalidJWT", "jwt expired")
            except jwt.PyJWTError:
                return _err(400, "InvalidJWT", "invalid signature")
            if grant.get("url") != f"{bucket}/{path}":
                return _err(400, "InvalidSignature", "The url does not match the token")
            obj = self.objects.get((bucket, path))
            if obj is None:
                return self._missing()
            headers = {}
            if "download" in request.query_params:
                name = request.query_params["download"] or path.rsplit("/", 1)[-1]
                headers["Content-Disposition"] = f"attachment; filename=\"{quote(name)}\""
            return Response(obj.data, media_type=obj.content_type, headers=headers)

        @api.post("/storage/v1/object/list/{bucket}")
        async def list_objects(bucket: str, request: Request) -> JSONResponse:
            self.calls["list"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            body = await request.json()
            prefix = str(body.get("prefix") or "").strip("/")
            limit, offset = int(body.get("limit", 100)), int(body.get("offset", 0))
            files: dict[str, dict[str, Any]] = {}
            folders: dict[str, dict[str, Any]] = {}
            for (b, key), obj in self.objects.items():
                if b != bucket or (prefix and not key.startswith(prefix + "/")):
                    continue
                rest = key[len(prefix) + 1:] if prefix else key
                if "/" in rest:
                    name = rest.split("/", 1)[0]
                    folders[name] = {"name": name, "id": None, "updated_at": None, "created_at": None,
                                     "last_accessed_at": None, "metadata": None}
                else:
                    info = obj.info(bucket, key)
                    files[rest] = {"name": rest, "id": obj.id, "updated_at": obj.created_at,
                                   "created_at": obj.created_at, "last_accessed_at": obj.created_at,
                                   "metadata": {**info["metadata"], "eTag": info["etag"]}}
            entries = [*(folders[n] for n in sorted(folders)), *(files[n] for n in sorted(files))]
            return JSONResponse(entries[offset:offset + limit])

        @api.get("/storage/v1/object/info/{bucket}/{path:path}")
        async def info(bucket: str, path: str, request: Request) -> JSONResponse:
            self.calls["info"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            obj = self.objects.get((bucket, path))
            return self._missing() if obj is None else JSONResponse(obj.info(bucket, path))

        @api.delete("/storage/v1/object/{bucket}")
        async def remove(bucket: str, request: Request) -> JSONResponse:
            self.calls["remove"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            body = json.loads(await request.body() or b"{}")
            removed = []
            for name in body.get("prefixes", []):
                obj = self.objects.pop((bucket, name), None)
                if obj is not None:
                    removed.append(obj.info(bucket, name))
            return JSONResponse(removed)

        @api.get("/storage/v1/object/{bucket}/{path:path}")
        async def download(bucket: str, path: str, request: Request) -> Response:
            self.calls["download"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            obj = self.objects.get((bucket, path))
            return self._missing() if obj is None else Response(obj.data, media_type=obj.content_type)

        @api.api_route("/storage/v1/object/{bucket}/{path:path}", methods=["POST", "PUT"])
        async def upload(bucket: str, path: str, request: Request) -> JSONResponse:
            self.calls["upload"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            data, ctype = await self._body(request)
            if request.method == "PUT" and (bucket, path) not in self.objects:
                return self._missing()
            upsert = request.method == "PUT" or request.headers.get("x-upsert") == "true"
            return self._store(bucket, path, data, ctype, upsert)

        @api.delete("/storage/v1/object/{bucket}/{path:path}")
        async def delete_one(bucket: str, path: str, request: Request) -> JSONResponse:
            self.calls["delete"] += 1
            if (problem := self._service(request) or self._bucket(bucket)) is not None:
                return problem
            if self.objects.pop((bucket, path), None) is None:
                return self._missing()
            return JSONResponse({"message": "Successfully deleted"})

        return api
