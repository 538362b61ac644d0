"""Supabase mode: the caller is the Supabase user whose access token (a JWT) comes in the request.

Tokens are verified here, without a call to Supabase per request:
* HS256 with the project's (legacy) JWT secret, when one is configured;
* ES256 / RS256 with the project's public keys, from `{url}/auth/v1/.well-known/jwks.json`: fetched on
  first need, kept for `jwks_lifetime` seconds, fetched again at once when a token names a key id the
  set does not hold (a key rotation), but no more often than every `refetch_interval` seconds, so a
  stream of made-up key ids cannot turn into a stream of requests to Supabase. When a refresh fails, the
  keys already held keep working for one more lifetime.

Audience, issuer, expiry (with `leeway` seconds of clock skew) and the presence of `sub` are checked.
Every failure is an AuthError whose message says only what helps the user ("expired", or "not
valid"); the reason is logged for the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from ..errors import AuthError
from .base import Caller, bearer_token

log = logging.getLogger(__name__)

ASYMMETRIC = ("ES256", "RS256")
INVALID = "The sign-in token is not valid."
SIGN_IN_AGAIN = "Sign in again."


def jwks_url_for(url: str) -> str:
    return f"{url.rstrip('/')}/auth/v1/.well-known/jwks.json"


class SupabaseAuth:
    """Verifies Supabase user JWTs locally. `jwks_url=None` uses the project's standard key set; `""`
    turns asymmetric keys off (HS256 only). At least one of the secret and the key set is needed."""

    may_block = True  # the key set is fetched when a token names a key not seen yet

    def __init__(self, url: str, jwt_secret: str | None = None, jwks_url: str | None = None, *,
                 audience: str = "authenticated", issuer: str | None = None, leeway: float = 30.0,
                 jwks_lifetime: float = 600.0, refetch_interval: float = 30.0, timeout: float = 5.0,
                 http: httpx.Client | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url.rstrip("/")
        self.jwt_secret = jwt_secret or None
        self.jwks_url = jwks_url_for(self.url) if jwks_url is None else (jwks_url or None)
        if self.jwt_secret is None and self.jwks_url is None:
            raise ValueError("SupabaseAuth needs a JWT secret or a JWKS URL.")
        self.audience = audience
        self.issuer = issuer if issuer is not None else f"{self.url}/auth/v1"
        self.leeway = leeway
        self.jwks_lifetime = jwks_lifetime
        self.refetch_interval = refetch_interval
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")   # the last successful fetch
        self._tried_at = float("-inf")     # the last attempt, successful or not

    # -- the Authenticator protocol ---------------------------------------------------------------------

    def authenticate(self, authorization_header: str | None) -> Caller:
        token = bearer_token(authorization_header)
        claims = self.verify(token)
        email = claims.get("email")
        return Caller(user_id=claims["sub"], email=email if isinstance(email, str) and email else None)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; AuthError otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise self._refuse(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg == "HS256" and self.jwt_secret is not None:
            key: Any = self.jwt_secret
            algorithms = ["HS256"]
        elif alg in ASYMMETRIC and self.jwks_url is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise self._refuse(f"{alg} token without a key id")
            jwk = self._key(kid)
            if jwk.algorithm_name != alg:
                raise self._refuse(f"token algorithm {alg} does not match key {kid} ({jwk.algorithm_name})")
            key, algorithms = jwk.key, [alg]
        else:
            raise self._refuse(f"algorithm {alg!r} is not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=algorithms, audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options={"require": ["exp", "sub", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("The sign-in token has expired.", hint=SIGN_IN_AGAIN) from None
        except jwt.PyJWTError as exc:
            raise self._refuse(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise self._refuse("no subject")
        return claims

    # -- the key set ------------------------------------------------------------------------------------

    def _key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            fresh = self._keys is not None and now - self._fetched_at < self.jwks_lifetime
            if not fresh or kid not in (self._keys or {}):
                # Stale, missing, or a key id we do not know (a rotation): fetch, but not more often than
                # every refetch_interval seconds, whether the last attempt worked or not.
                if now - self._tried_at >= self.refetch_interval:
                    self._refresh(now)
                if self._keys is not None and now - self._fetched_at >= 2 * self.jwks_lifetime:
                    self._keys = None  # Supabase unreachable for too long: stop trusting old keys
            keys = self._keys
        if keys is None:
            raise AuthError("The sign-in could not be checked right now.",
                            hint="Try again in a moment; if it persists, the operator should check "
                                 "DUBSTUDIO_SUPABASE_URL.")
        if kid not in keys:
            raise self._refuse(f"unknown key id {kid!r}")
        return keys[kid]

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            assert self.jwks_url is not None
            response = self._http.get(self.jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
            entries = data.get("keys") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                raise ValueError("no 'keys' list")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Supabase JWKS at %s could not be fetched: %s", self.jwks_url, exc)
            return  # keep what we have
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not entry.get("kid"):
                continue
            try:
                jwk = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:
                log.info("Supabase JWKS key %r skipped: %s", entry.get("kid"), exc)
                continue
            if jwk.algorithm_name in ASYMMETRIC:
                keys[str(entry["kid"])] = jwk
        self._keys = keys
        self._fetched_at = now

    @staticmethod
    def _refuse(reason: str) -> AuthError:
        log.info("Supabase token refused: %s", reason)
        return AuthError(INVALID, hint=SIGN_IN_AGAIN)

    def close(self) -> None:
        self._http.close()
