"""Supabase user JWTs verified locally (HS256 secret, ES256/RS256 through the JWKS), against the fake
Supabase over real HTTP: the right user for a good token, AuthError for every bad one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from supabase import ClientOptions, create_client

from dubstudio.auth.base import Authenticator, Caller
from dubstudio.auth.supabase import SupabaseAuth
from dubstudio.errors import AuthError
from tests.fakes.servers import free_port
from tests.fakes.supabase_server import JWT_SECRET, OTHER_USER_ID, USER_ID, USERS, FakeSupabase

PLAIN = {"The sign-in token is not valid.", "The sign-in token has expired.", "This route needs a sign-in token.",
         "The sign-in could not be checked right now."}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()
    with fake.running():
        yield fake


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the module: making one loads the CA certificates (a third of a second)."""
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def fake(server: FakeSupabase) -> FakeSupabase:
    server.reset()
    return server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(fake: FakeSupabase, clock: Clock, http: httpx.Client) -> SupabaseAuth:
    return SupabaseAuth(fake.url, JWT_SECRET, None, clock=clock, http=http)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def refused(auth: Authenticator, header: str | None) -> AuthError:
    with pytest.raises(AuthError) as info:
        auth.authenticate(header)
    err = info.value
    assert err.status == 401 and err.code == "unauthorized"
    assert err.message in PLAIN, err.message
    assert err.__cause__ is None  # no chained internals
    body = json.dumps(err.to_dict())
    for leak in ("Traceback", "signature", "audience", "issuer", "kid", "Error:", JWT_SECRET):
        assert leak not in body
    return err


def test_good_tokens_give_their_user(fake: FakeSupabase, auth: SupabaseAuth) -> None:
    assert auth.authenticate(bearer(fake.token(alg="HS256"))) == Caller(USER_ID, USERS[USER_ID])
    assert auth.authenticate(bearer(fake.token())) == Caller(USER_ID, USERS[USER_ID])  # ES256 via the JWKS
    assert auth.authenticate(bearer(fake.token(alg="RS256"))) == Caller(USER_ID, USERS[USER_ID])
    assert auth.authenticate("bearer  " + fake.token(OTHER_USER_ID)) == Caller(OTHER_USER_ID, USERS[OTHER_USER_ID])
    no_email = fake.token(omit=("email",))
    assert auth.authenticate(bearer(no_email)) == Caller(USER_ID, None)


def test_tokens_agree_with_supabase_py(fake: FakeSupabase, auth: SupabaseAuth) -> None:
    """The fake answers supabase-py's get_user as Supabase does, for the same tokens we accept."""
    sb = create_client(fake.url, "anon-key-not-a-jwt",
                       options=ClientOptions(auto_refresh_token=False, persist_session=False))
    for token in (fake.token(), fake.token(alg="HS256"), fake.token(OTHER_USER_ID, alg="RS256")):
        user = sb.auth.get_user(token)
        assert user is not None
        assert auth.authenticate(bearer(token)) == Caller(user.user.id, user.user.email)


def _alg_none(fake: FakeSupabase) -> str:
    _, body, _ = fake.token(alg="HS256").split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{none}.{body}."


def _public_key_as_hmac_secret(fake: FakeSupabase) -> str:
    """The classic confusion attack: HS256 signed with the published public key (PyJWT will not make
    such a token, so it is made by hand)."""
    jwk = fake.jwks()["keys"][0]
    pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(fake.token(), options={"verify_signature": False})

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': jwk['kid']})}.{part(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


CASES = {
    "no header": lambda f: None,
    "empty header": lambda f: "",
    "other scheme": lambda f: "Basic dXNlcjpwYXNz",
    "bearer without token": lambda f: "Bearer ",
    "garbage": lambda f: "Bearer not-a-jwt",
    "three garbage parts": lambda f: "Bearer aaa.bbb.ccc",
    "truncated": lambda f: bearer(f.token()[:-10]),
    "huge": lambda f: bearer("a" * 20_000),
    "non-ascii": lambda f: bearer(f.token() + "é"),
    "expired HS256": lambda f: bearer(f.token(alg="HS256", expired=True)),
    "expired ES256": lambda f: bearer(f.token(expired=True)),
    "wrong secret": lambda f: bearer(f.token(alg="HS256", secret="another-secret-of-at-least-thirty-two-bytes")),
    "foreign EC key": lambda f: bearer(f.token(foreign_key=True)),
    "wrong audience": lambda f: bearer(f.token(audience="anon")),
    "wrong audience HS256": lambda f: bearer(f.token(alg="HS256", audience="service_role")),
    "wrong issuer": lambda f: bearer(f.token(issuer="https://evil.example/auth/v1")),
    "no issuer": lambda f: bearer(f.token(omit=("iss",))),
    "no subject": lambda f: bearer(f.token(omit=("sub",))),
    "empty subject": lambda f: bearer(f.token(sub="")),
    "no expiry": lambda f: bearer(f.token(omit=("exp",))),
    "no audience": lambda f: bearer(f.token(omit=("aud",))),
    "alg none": lambda f: bearer(_alg_none(f)),
    "public key as HMAC secret": lambda f: bearer(_public_key_as_hmac_secret(f)),
    "unknown kid": lambda f: bearer(f.token(kid="made-up-kid")),
    "ES256 header on the RSA key": lambda f: bearer(f.token(kid="fake-rsa-0")),
    "not yet valid": lambda f: bearer(f.token(claims={"nbf": 4_000_000_000})),
}


@pytest.mark.parametrize("case", CASES)
def test_every_bad_token_is_refused(case: str, fake: FakeSupabase, auth: SupabaseAuth) -> None:
    err = refused(auth, CASES[case](fake))
    if case.startswith("expired"):
        assert err.message == "The sign-in token has expired."
    elif case in ("no header", "empty header", "other scheme", "bearer without token"):
        assert err.message == "This route needs a sign-in token."
    else:
        assert err.message == "The sign-in token is not valid."


def test_hs256_refused_without_a_secret_and_es256_without_jwks(fake: FakeSupabase, clock: Clock,
                                                               http: httpx.Client) -> None:
    jwks_only = SupabaseAuth(fake.url, None, None, clock=clock, http=http)
    refused(jwks_only, bearer(fake.token(alg="HS256")))
    assert jwks_only.authenticate(bearer(fake.token())).user_id == USER_ID
    secret_only = SupabaseAuth(fake.url, JWT_SECRET, "", clock=clock, http=http)
    refused(secret_only, bearer(fake.token()))
    assert fake.calls["jwks"] == 1  # only jwks_only fetched
    with pytest.raises(ValueError):
        SupabaseAuth(fake.url, None, "", http=http)


def test_jwks_unreachable(fake: FakeSupabase, clock: Clock, http: httpx.Client) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    down = SupabaseAuth(closed, None, None, clock=clock, http=http)
    err = refused(down, bearer(fake.token(issuer=f"{closed}/auth/v1")))
    assert err.message == "The sign-in could not be checked right now."
    fake.jwks_down = True
    auth = SupabaseAuth(fake.url, JWT_SECRET, None, clock=clock, http=http)
    assert refused(auth, bearer(fake.token())).message == "The sign-in could not be checked right now."
    assert auth.authenticate(bearer(fake.token(alg="HS256"))).user_id == USER_ID  # HS256 needs no JWKS


def test_jwks_is_cached_for_its_lifetime(fake: FakeSupabase, auth: SupabaseAuth, clock: Clock) -> None:
    for _ in range(5):
        auth.authenticate(bearer(fake.token()))
        auth.authenticate(bearer(fake.token(OTHER_USER_ID, alg="RS256")))
        clock.now += 60
    assert fake.calls["jwks"] == 1
    clock.now += 600  # past the 10-minute lifetime
    auth.authenticate(bearer(fake.token()))
    assert fake.calls["jwks"] == 2


def test_unknown_kid_refetches_once_then_is_rate_limited(fake: FakeSupabase, auth: SupabaseAuth,
                                                         clock: Clock) -> None:
    auth.authenticate(bearer(fake.token()))
    assert fake.calls["jwks"] == 1
    clock.now += 31
    new_kid = fake.rotate()
    rotated = fake.token()
    assert jwt.get_unverified_header(rotated)["kid"] == new_kid
    assert auth.authenticate(bearer(rotated)).user_id == USER_ID  # one refetch found the new key
    assert fake.calls["jwks"] == 2
    assert auth.authenticate(bearer(fake.token(kid="fake-ec-0"))).user_id == USER_ID  # the old key still published
    for _ in range(20):  # made-up key ids cannot make us hammer Supabase
        refused(auth, bearer(fake.token(kid="made-up-kid")))
    assert fake.calls["jwks"] == 2
    clock.now += 31
    refused(auth, bearer(fake.token(kid="made-up-kid")))
    assert fake.calls["jwks"] == 3


def test_held_keys_survive_a_jwks_outage_for_a_while(fake: FakeSupabase, auth: SupabaseAuth, clock: Clock) -> None:
    auth.authenticate(bearer(fake.token()))
    fake.jwks_down = True
    clock.now += 700  # stale: a refresh is tried, fails, the held keys still work
    assert auth.authenticate(bearer(fake.token())).user_id == USER_ID
    assert fake.calls["jwks"] == 2
    clock.now += 600  # two lifetimes without a successful fetch: stop trusting them
    assert refused(auth, bearer(fake.token())).message == "The sign-in could not be checked right now."
    fake.jwks_down = False
    clock.now += 31
    assert auth.authenticate(bearer(fake.token())).user_id == USER_ID
