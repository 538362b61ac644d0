"""The shared retry loop: what it retries, how long it waits, and that it stops."""

from __future__ import annotations

import email.utils
import time

import pytest

from dubstudio.errors import PermanentVendorError, VendorError
from dubstudio.vendors.retry import backoff_delay, call_with_retries, parse_retry_after


class Flaky:
    """Fails with the given errors in turn, then returns "ok"; counts calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_success_needs_no_retry() -> None:
    sleeps: list[float] = []
    fn = Flaky()
    assert call_with_retries(fn, vendor="X", attempts=4, sleep=sleeps.append) == "ok"
    assert fn.calls == 1 and sleeps == []


def test_transient_errors_are_retried_with_growing_capped_jittered_waits() -> None:
    sleeps: list[float] = []
    fn = Flaky(VendorError("a"), VendorError("b"), VendorError("c"))
    assert call_with_retries(fn, vendor="X", attempts=4, base_delay=1.0, max_delay=3.0, sleep=sleeps.append) == "ok"
    assert fn.calls == 4
    assert len(sleeps) == 3
    for n, s in enumerate(sleeps):
        assert 0.0 <= s <= min(3.0, 1.0 * 2**n)


def test_permanent_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    fn = Flaky(PermanentVendorError("bad key"))
    with pytest.raises(PermanentVendorError):
        call_with_retries(fn, vendor="X", attempts=5, sleep=sleeps.append)
    assert fn.calls == 1 and sleeps == []


def test_other_exceptions_are_not_retried() -> None:
    fn = Flaky(ValueError("a bug"))
    with pytest.raises(ValueError):
        call_with_retries(fn, vendor="X", attempts=5, sleep=lambda s: None)
    assert fn.calls == 1


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    sleeps: list[float] = []
    fn = Flaky(*(VendorError(f"fail {i}") for i in range(10)))
    with pytest.raises(VendorError) as info:
        call_with_retries(fn, vendor="X", attempts=3, base_delay=0.01, sleep=sleeps.append)
    assert fn.calls == 3 and len(sleeps) == 2
    assert info.value.message == "fail 2"
    assert info.value.details["attempts"] == 3


def test_zero_attempts_still_calls_once() -> None:
    fn = Flaky()
    assert call_with_retries(fn, vendor="X", attempts=0, sleep=lambda s: None) == "ok"


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    sleeps: list[float] = []
    fn = Flaky(VendorError("slow down", retry_after=3.0), VendorError("again", retry_after=0.0))
    assert call_with_retries(fn, vendor="X", attempts=3, base_delay=0.01, max_delay=20, sleep=sleeps.append) == "ok"
    assert sleeps[0] == 3.0
    assert sleeps[1] <= 0.02  # a zero Retry-After does not stretch the backoff


def test_retry_after_beyond_max_delay_is_raised_at_once_for_the_queue() -> None:
    sleeps: list[float] = []
    fn = Flaky(VendorError("come back in an hour", retry_after=3600))
    with pytest.raises(VendorError) as info:
        call_with_retries(fn, vendor="X", attempts=5, max_delay=20, sleep=sleeps.append)
    assert fn.calls == 1 and sleeps == []
    assert info.value.retry_after == 3600


def test_backoff_delay_is_full_jitter_under_an_exponential_cap() -> None:
    assert backoff_delay(0, 0.5, 20, rng=lambda: 0.0) == 0.0
    assert backoff_delay(0, 0.5, 20, rng=lambda: 1.0) == 0.5
    assert backoff_delay(3, 0.5, 20, rng=lambda: 1.0) == 4.0
    assert backoff_delay(10, 0.5, 20, rng=lambda: 1.0) == 20.0


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "5"}) == 5.0
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after": "-4"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": future}) or 0) <= 31
