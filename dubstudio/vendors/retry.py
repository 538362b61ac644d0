"""The one retry loop every cloud vendor module uses.

`call_with_retries(fn, vendor=..., attempts=...)` calls `fn` until it returns, retrying only on a
transient `VendorError` (never on `PermanentVendorError`, never on anything else), at most `attempts`
times in all, sleeping between tries with exponential backoff and full jitter
(`uniform(0, min(max_delay, base_delay * 2**n))`, see the AWS architecture note "Exponential Backoff
And Jitter"), or the vendor's `Retry-After` when that is longer. The last error is raised, with the
number of tries recorded in its details.

A `Retry-After` longer than `max_delay` is not slept in a worker thread: the error is raised at once,
still carrying `retry_after`, so the queue can reschedule the whole job later instead of a thread
sitting idle for minutes.

Why not tenacity or stamina: both fit the basic loop, but this one needs two things they would need
custom callbacks for (a wait computed from the exception's own `retry_after`, and giving up early when
that wait is too long), and the whole policy here is ~30 lines that tests drive with an injected
`sleep`. One small, typed function is easier to read than a decorator configuration, and no
dependency is added.

Vendor SDK retries are switched off where we use an SDK (Deepgram: `max_retries=0`), so every retry
of a vendor call happens here, bounded and counted in one place.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from ..errors import PermanentVendorError, VendorError

T = TypeVar("T")

log = logging.getLogger(__name__)


def backoff_delay(attempt: int, base_delay: float, max_delay: float,
                  rng: Callable[[], float] = random.random) -> float:
    """Full-jitter delay before retry number `attempt` (0 for the first retry)."""
    ceiling = min(max_delay, base_delay * (2.0 ** attempt))
    return ceiling * rng()


def call_with_retries(fn: Callable[[], T], *, vendor: str, attempts: int, base_delay: float = 0.5,
                      max_delay: float = 20.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn()`; retry a transient VendorError up to `attempts` tries in all, then raise the last.

    `vendor` names the vendor in log lines. `sleep` is injectable so tests do not wait.
    """
    attempts = max(1, attempts)
    for attempt in range(attempts):
        try:
            return fn()
        except PermanentVendorError:
            raise
        except VendorError as exc:
            exc.details["attempts"] = attempt + 1
            if attempt + 1 >= attempts:
                raise
            wait = backoff_delay(attempt, base_delay, max_delay)
            if exc.retry_after is not None:
                if exc.retry_after > max_delay:
                    raise  # too long to wait in-thread: let the queue reschedule the job
                wait = max(wait, exc.retry_after)
            log.info("%s: %s; retry %d of %d in %.2f s", vendor, exc.message, attempt + 1, attempts - 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or `retry-after-ms`.

    None when absent or unreadable; never negative.
    """
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(vendor: str, exc: Exception, doing: str, timeout: float, url_hint: str) -> VendorError:
    """Our error for a call that timed out or whose connection failed (both retried)."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return VendorError(f"{vendor} did not answer within {timeout:g} s while {doing}.",
                           hint="Raise DUBSTUDIO_VENDOR_TIMEOUT, or check the network connection.")
    return VendorError(f"{vendor} could not be reached or dropped the connection while {doing} "
                       f"({type(exc).__name__}: {exc}).", hint=url_hint)
