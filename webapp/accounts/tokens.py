"""Personal API tokens: made (the token shown once), checked on each API request, revoked.

A token reads ``nas_`` followed by 43 URL-safe characters (256 random bits); the database keeps
its SHA-256 only, so a copy of the database lets nobody call the API.
"""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from webapp.accounts.models import ApiToken

PREFIX = "nas_"
SHOWN_CHARACTERS = 8  # of the token, kept to tell tokens apart in the list


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Make a token for ``user``; returns the row and the token itself (never stored: show it now)."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user, name=(name.strip() or "API token")[:100], prefix=token[:SHOWN_CHARACTERS], digest=digest_of(token)
    )
    return row, token


def token_user(token: str) -> tuple[ApiToken, object] | None:
    """The active token row and its (active) user for ``token``, or None; marks it used now."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest_of(token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:  # one write a minute at most
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row, row.user


def token_revoke(*, user, pk: int) -> bool:
    """Revoke one of ``user``'s tokens; True if it was active until now."""
    return bool(ApiToken.objects.filter(pk=pk, user=user, revoked_at__isnull=True).update(revoked_at=timezone.now()))
