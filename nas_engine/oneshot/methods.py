"""The one-shot methods by name (what ``OneShotStrategy.one_shot_method`` names). A module of its
own so importing the strategies never imports torch: the loop looks a method up only when it runs."""

from __future__ import annotations

from collections.abc import Callable

from nas_engine.oneshot import OneShotContext, Shortlist


def _spos(context: OneShotContext) -> Shortlist:
    from nas_engine.oneshot.spos import spos_shortlist

    return spos_shortlist(context)


def _darts(context: OneShotContext) -> Shortlist:
    from nas_engine.oneshot.darts import darts_shortlist

    return darts_shortlist(context)


METHODS: dict[str, Callable[[OneShotContext], Shortlist]] = {"spos": _spos, "darts": _darts}
