"""The one-shot phase of a search (``OneShotPhase``): before any trial, a one-shot strategy's method
trains a supernet and hands the strategy a shortlist of architectures to train from scratch; the
supernet is saved as ``SUPERNET_FILE`` for a later warm start (``load_supernet``)."""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import torch

from nas_engine.loop_state import LoopState
from nas_engine.strategies import OneShotStrategy

logger = logging.getLogger(__name__)

SUPERNET_EPOCHS_PER_TRIAL_EPOCH = 4  # the supernet trains for this many times a trial's max_epochs
SUPERNET_FILE = "supernet.pt"
ONE_SHOT_REPORT_SECONDS = 2.0  # a supernet reports progress every epoch; status events go out at most this often


class OneShotPhase(LoopState):
    """The part of a search that runs a one-shot strategy's supernet (``run_one_shot``)."""

    def throttled_status(self, *, seconds: float) -> Callable[[float, str], None]:
        """A progress callback that passes a running status on at most every ``seconds``."""
        sent = [-math.inf]

        def report(fraction: float, message: str) -> None:
            if time.monotonic() - sent[0] >= seconds:
                sent[0] = time.monotonic()
                self.status("running", message)

        return report

    def run_one_shot(self) -> None:
        """Let a one-shot strategy's method train its supernet (in ``budget_share`` of the budget
        left) and hand the strategy its shortlist; the supernet is saved as ``supernet.pt`` in the
        artifacts folder for a later warm start."""
        from nas_engine.oneshot import OneShotContext
        from nas_engine.oneshot.methods import METHODS

        strategy, config = self.strategy, self.config
        if not isinstance(strategy, OneShotStrategy) or strategy.received_shortlist:
            return
        now = time.monotonic()
        context = OneShotContext(
            space=self.space,
            data=self.data,
            objectives=config.objectives,
            limits=config.analytic_limits(),
            deadline=now + strategy.budget_share * max(0.0, self.deadline - now),
            seed=config.seed,
            augmentation=self.augmentation,
            on_progress=self.throttled_status(seconds=ONE_SHOT_REPORT_SECONDS),
            should_cancel=self.should_cancel,
            warm_state=self.warm_state,
            epochs=SUPERNET_EPOCHS_PER_TRIAL_EPOCH * self.max_epochs,
        )
        try:
            shortlist = METHODS[strategy.one_shot_method](context)
        except Exception as exc:  # like a broken trial, a broken supernet must not end the search
            logger.error("The %s supernet failed", strategy.one_shot_method, exc_info=exc)
            strategy.receive_shortlist([])
            self.status("running", f"The supernet failed ({type(exc).__name__}: {exc}); searching without it.")
            return
        if shortlist.cancelled:
            self.cancelled = True
            return
        if self.artifacts_dir is not None and shortlist.state is not None:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            torch.save(shortlist.state, self.artifacts_dir / SUPERNET_FILE)
        self.one_shot_scores = {
            self.space.arch_hash(arch): float(score)
            for arch, score in zip(shortlist.archs, shortlist.predicted, strict=True)
        }
        self.one_shot_notes = dict(shortlist.notes)
        strategy.receive_shortlist(shortlist.archs)
        warm = " (warm-started from an earlier search's supernet)" if shortlist.notes.get("warm_started") else ""
        self.status("running", f"Supernet done{warm}: {len(shortlist.archs)} architectures to train from scratch.")


def load_supernet(path: str | Path | None) -> dict | None:
    """The supernet state saved by a one-shot search (``SUPERNET_FILE``), or None when there is none
    or it cannot be read (logged: a warm start is an optimisation, never a reason to fail)."""
    if path is None:
        return None
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        logger.warning("Cannot read the supernet %s for a warm start (%s); training one from scratch.", path, exc)
        return None
    return state if isinstance(state, dict) else None
