"""What every page's template needs to know about accounts."""

from django.conf import settings


def signup_open(request) -> dict[str, bool]:
    """Whether to offer the sign-up link (SIGNUP_OPEN)."""
    return {"signup_open": settings.SIGNUP_OPEN}
