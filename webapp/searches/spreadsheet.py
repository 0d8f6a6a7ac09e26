"""CSV cells that a spreadsheet opens as text, never as a formula (CSV injection)."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection): text that starts like
    one gets a leading apostrophe. Numbers, negative ones too, are left as they are."""
    text = repr(value) if isinstance(value, float) else str(value)
    if not text.startswith(FORMULA_STARTS):
        return text
    try:
        float(text)
    except ValueError:
        return "'" + text
    return text
