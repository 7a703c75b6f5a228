"""The public intake's own per-IP limit (the gateway limits every IP too; this one holds when the service is reached
some other way and is far stricter: a person files a handful of reports, not dozens a minute).

A token bucket per client IP, in memory, one per app instance (``app.state``). The client IP is the last entry of
``X-Forwarded-For`` (over all its lines) — the one the gateway appended from the connection it accepted — or the
connection's own address when the request did not come through the gateway. Figures: the app settings'
``whistleblowing`` section (``SIFUND_WHISTLEBLOWING_*``).
"""

import math
import time
from dataclasses import dataclass

from fastapi import Request

from services.kernel.errors import RateLimited
from services.kernel.settings import app_settings


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBucket:
    def __init__(self, burst: int, per_hour: int, *, max_keys: int = 100_000):
        self.capacity = float(burst)
        self.rate = per_hour / 3600.0
        self.max_keys = max_keys
        self.buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 if allowed (one token taken), else the seconds until the next token."""
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self.buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate if self.rate > 0 else 3600.0

    def _forget_full(self, now: float) -> None:
        full_after = self.capacity / self.rate if self.rate > 0 else math.inf
        self.buckets = {k: b for k, b in self.buckets.items() if now - b.stamp < full_after}


def client_ip(request: Request) -> str:
    # Several X-Forwarded-For lines are one list, in order (RFC 9110 §5.3): a caller's own line may come first (the
    # gateway passes it on before its own), so only the last entry of the last line is the gateway's.
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    if forwarded:
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return (request.client.host if request.client else "unknown")[:64]


def _limiter(request: Request, name: str) -> TokenBucket:
    state = request.app.state
    limiter = getattr(state, name, None)
    if limiter is None:
        s = app_settings(request).whistleblowing
        limiter = (TokenBucket(s.intake_burst, s.intake_per_hour) if name == "whistleblowing_intake_limiter"
                   else TokenBucket(s.track_burst, s.track_per_hour))
        setattr(state, name, limiter)
    return limiter


def limit(request: Request, name: str) -> str:
    """Take a token for the caller's IP from the limiter ``name``; 429 when there is none. Returns the IP."""
    ip = client_ip(request)
    wait = _limiter(request, name).take(ip)
    if wait > 0:
        raise RateLimited("RATE_LIMITED", f"提交过于频繁，请 {math.ceil(wait)} 秒后再试",
                          details={"retry_after_seconds": math.ceil(wait)})
    return ip


def limit_intake(request: Request) -> str:
    return limit(request, "whistleblowing_intake_limiter")


def limit_tracking(request: Request) -> str:
    return limit(request, "whistleblowing_track_limiter")
