"""Bearer-token authentication and a per-token rate limit for the API.

A request names its token in ``Authorization: Bearer <token>`` (``webapp.accounts.tokens``). Each
token may make API_RATE_PER_MINUTE requests a minute, counted in the shared cache (Redis), so
every web process sees one count; past it the API answers 429 with Retry-After.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from ninja.security import HttpBearer

from webapp.accounts import tokens


class RateLimited(Exception):
    """A token made more requests this minute than API_RATE_PER_MINUTE allows."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests with this token: at most {settings.API_RATE_PER_MINUTE} a minute.")
        self.retry_after = retry_after


def count_request(token_key: str) -> None:
    """Count one request of the token in this minute's window.

    Raises:
        RateLimited: The window is full.
    """
    now = time.time()
    window = int(now // 60)
    key = f"api-rate:{token_key}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=120)
        count = 1
    if count > settings.API_RATE_PER_MINUTE:
        raise RateLimited(retry_after=max(1, int((window + 1) * 60 - now) + 1))


class BearerToken(HttpBearer):
    """The token's user becomes ``request.user``, so every selector applies the pages' ownership."""

    def authenticate(self, request, token: str):
        found = tokens.token_user(token.strip())
        if found is None:
            return None
        row, user = found
        count_request(row.digest[:32])
        request.user = user
        return user
