"""Template helpers for the dataset pages: the profile a dataset page shows, and durations in words."""

from django import template

import nas_engine
from webapp.datasets import selectors

register = template.Library()


@register.simple_tag
def dataset_profile(dataset, target="") -> dict:
    """``{% dataset_profile dataset target as profile %}``: works wherever the page is rendered from
    (the search form renders it again, with only the dataset, when its input is refused)."""
    return selectors.dataset_profile(dataset=dataset, target=target or "")


@register.filter
def duration(seconds) -> str:
    """45 -> "45 s", 600 -> "10 min", 5400 -> "1 h 30 min": the engine's words for a duration."""
    return "–" if seconds is None else nas_engine.estimate.duration(seconds)


@register.filter
def percent(fraction) -> str:
    """0.425 -> "43%"."""
    return f"{round(100 * (fraction or 0))}%"
