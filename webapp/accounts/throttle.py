"""Log-in throttling, counted in the shared cache (Redis) so every server process sees one count.

Every log-in attempt is counted *before* the password is checked, with the cache's atomic
increment, against two limits at once:

- per username (LOGIN_MAX_FAILURES): guesses at one account, from any number of addresses;
- per client address (LOGIN_MAX_FAILURES_PER_ADDRESS): one address trying many usernames.

So parallel guesses cannot all slip in before the count catches up (each one's increment happens
first), and spraying one password over many usernames stops at the address limit. A successful
log-in clears its username's count and gives back its own attempt on the address. Counts last
LOGIN_LOCKOUT_SECONDS from the first attempt.

The client address is REMOTE_ADDR, unless TRUSTED_PROXY_COUNT says how many proxies of ours stand
in front: then it is the address the outermost of them saw, read from X-Forwarded-For (each proxy
appends the address it received from, so the rightmost TRUSTED_PROXY_COUNT entries are ours to
trust, and anything left of them may be forged by the client). Without that setting the header is
ignored: behind an unconfigured proxy every client shares the proxy's address (and its limit).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


def client_address(request) -> str:
    """The address a request came from, through TRUSTED_PROXY_COUNT trusted proxies."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if not hops:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-hops] if len(forwarded) >= hops else forwarded[0]


def username_key(username: str) -> str:
    """Cache key of one username's attempts (hashed: any text a client sends is a safe key)."""
    digest = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"login-attempts:user:{digest}"


def address_key(address: str) -> str:
    digest = hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()
    return f"login-attempts:address:{digest}"


def _count(key: str) -> int:
    """Add one attempt to ``key`` atomically and return the new count; the window starts at the first."""
    cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # it expired between add and incr: this attempt opens a new window
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        return cache.incr(key)


@dataclass
class LoginAttempt:
    """One log-in attempt, counted when made (``start``), before any password is checked."""

    user_key: str
    address_key: str
    refusal: str  # why it is refused without checking the password; "" when it may go on

    @classmethod
    def start(cls, request) -> LoginAttempt:
        user_key = username_key(request.POST.get("username") or "")
        addr_key = address_key(client_address(request))
        by_user, by_address = _count(user_key), _count(addr_key)
        minutes = max(1, round(settings.LOGIN_LOCKOUT_SECONDS / 60))
        refusal = ""
        if by_user > settings.LOGIN_MAX_FAILURES:
            refusal = f"Too many failed attempts for this username; try again in {minutes} minutes."
        elif by_address > settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
            refusal = f"Too many failed log-ins from your address; try again in {minutes} minutes."
        return cls(user_key, addr_key, refusal)

    def succeeded(self) -> None:
        """The password was right: the username starts again; the address gets this attempt back."""
        cache.delete(self.user_key)
        try:
            cache.decr(self.address_key)
        except ValueError:
            pass  # the window ended meanwhile
