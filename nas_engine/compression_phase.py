"""The compression phase of a search (``CompressionPhase``): after the trials, compressed variants
(``compress.VARIANTS``) of the best front models are made and recorded as trials."""

from __future__ import annotations

import dataclasses
import logging

from nas_engine.errors import ConstraintError
from nas_engine.loop_state import LoopState, analytic_violation
from nas_engine.pareto import pareto_front_nd
from nas_engine.results import TrialStatus, is_compressed, objective_vector

logger = logging.getLogger(__name__)

COMPRESSED_PARENTS = 3  # front trials, best scores first, whose compressed variants are made


class CompressionPhase(LoopState):
    """The part of a search that compresses its front (``compress_front``)."""

    def compress_front(self) -> None:
        """Derive ``compress.VARIANTS`` of the ``COMPRESSED_PARENTS`` best-scoring front trials
        (completed, with weights); each variant is recorded as a trial, rejected when it breaks a
        limit. A variant that cannot be made (a network too small to prune) is skipped, one that
        fails is recorded as failed: compression never ends the search."""
        from nas_engine.compress import VARIANTS, compress_trial, compressible  # torch and onnxruntime, when asked

        config = self.config
        if not config.compress or self.cancelled or self.artifacts_dir is None:
            return
        plain = [t for t in self.trials if t.status is TrialStatus.COMPLETED and not is_compressed(t.architecture)]
        vectors = [objective_vector(t, config.objectives) for t in plain]
        front = sorted((plain[i] for i in pareto_front_nd(vectors)), key=lambda t: -(t.score or 0.0))
        parents = [t for t in front if t.weights_path is not None and compressible(t.architecture)][:COMPRESSED_PARENTS]
        made = 0
        for parent in parents:
            for kind, ratio in VARIANTS:
                if self.should_cancel is not None and self.should_cancel():
                    self.cancelled = True
                    return
                number, self.next_number = self.next_number, self.next_number + 1
                self.status("running", f"Compressing trial {parent.number}: {kind} {ratio or ''}".rstrip() + ".")
                try:
                    variant = compress_trial(
                        parent, self.data, kind=kind, ratio=ratio, number=number,
                        artifacts_dir=self.artifacts_dir, seed=config.seed + number,
                    )  # fmt: skip
                except ConstraintError as exc:
                    logger.info("No %s variant of trial %d: %s", kind, parent.number, exc)
                    continue
                except Exception as exc:  # a broken variant must not end the search; keep the reason
                    logger.error("Compressing trial %d failed", parent.number, exc_info=exc)
                    failed = self.untrained(TrialStatus.FAILED, parent.architecture, number, parent.costs, str(exc))
                    self.record(failed, tell=False)
                    continue
                violation = analytic_violation(variant.costs, config) or self.latency_violation(variant.costs)
                if violation:
                    variant = dataclasses.replace(variant, status=TrialStatus.REJECTED, message=violation)
                self.record(variant, tell=False)
                made += 1
        if parents:
            self.status("running", f"{made} compressed variants of {len(parents)} front models.")
