"""What an endpoint's answer means, and when to try again.

* 2xx: delivered.
* 408 Request Timeout, 429 Too Many Requests, 5xx, other non-2xx (3xx: redirects are
  not followed), timeouts and connection errors: the receiver may recover — retry.
* any other 4xx: the receiver refuses this request for good (410 Gone, 401, 404 …)
  — failed at once, no retry. Replay it once the receiver is fixed.

Retries: at most 5 after the first attempt, 1 min, 10 min, 1 h, 4 h and 16 h after
the previous one (≈ 21 h in all, ≈ 23 h with the most jitter: within a day), each
jittered by ±10 % so that a receiver coming back from an outage is not hit by every
delivery at the same instant. `scale` multiplies them (tests and benchmarks use a
tiny one).
"""

from __future__ import annotations

import random

RETRY_DELAYS_S = (60, 600, 3600, 4 * 3600, 16 * 3600)
MAX_RETRIES = len(RETRY_DELAYS_S)
JITTER = 0.1
_MIN_DELAY_S = 0.001  # a retry is never due at the instant it is scheduled

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"


def outcome_of_status(status_code: int) -> str:
    if 200 <= status_code < 300:
        return DELIVERED
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return FAILED
    return RETRY


def retry_delay_s(retries_so_far: int, *, scale: float = 1.0, rng: random.Random | None = None) -> float | None:
    """Seconds until the next retry after `retries_so_far` retries, or None when they are used up."""
    if retries_so_far >= MAX_RETRIES:
        return None
    jitter = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return max(_MIN_DELAY_S, RETRY_DELAYS_S[retries_so_far] * scale * jitter)
