"""Peak activation memory of a batch-1 forward pass, followed op by op from the tensor sizes alone.

The model is of the network's data flow in eager PyTorch (``nn.Sequential`` frees an op's input
once the next op has run; a residual block keeps its input alive until its sum), not of any one
kernel: scratch buffers a backend adds (im2col columns, oneDNN reorders, batch-norm's per-channel
statistics) are not counted, so a measurement of eager CPU inference lies at or above it.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas_engine.results import Costs

FLOAT32_BYTES = 4
BATCH_NORM_COUNTER_BYTES = 8  # num_batches_tracked: one int64 per batch-norm layer


class ActivationPeak:
    """The most activation elements alive at once while ops run in order.

    Ops read the current tensor and write a new one; the current tensor is freed after the op
    unless something else keeps it (``pinned``): the caller's network input for the whole pass,
    a nested module's input until it returns, a residual block's body output until the sum.

    Args:
        n_inputs: Elements of the network input (one sample), alive until the pass ends.
    """

    def __init__(self, n_inputs: int) -> None:
        self.pinned = n_inputs
        self.current = 0  # elements of the current tensor not already counted in ``pinned``
        self.peak = n_inputs

    def op(self, size: int) -> None:
        """An op that reads the current tensor and writes one of ``size`` elements."""
        self.peak = max(self.peak, self.pinned + self.current + size)
        self.current = size

    def chain(self, sizes: Sequence[int]) -> None:
        """Ops run one after another, each writing the given number of elements."""
        for size in sizes:
            self.op(size)

    def nested(self, sizes: Sequence[int]) -> None:
        """Ops of a module nested in the network's ``nn.Sequential``: the outer one holds the
        module's input until the module returns."""
        block_input = self.current
        self.pinned, self.current = self.pinned + block_input, 0
        self.chain(sizes)
        self.pinned -= block_input

    def residual(self, body: Sequence[int], shortcut: Sequence[int], after: Sequence[int] = ()) -> None:
        """``after(body(x) + shortcut(x))``: ``x`` stays alive through the body and the shortcut,
        the body's output through the shortcut and the sum (an empty ``shortcut`` is the identity)."""
        block_input = self.current
        self.pinned, self.current = self.pinned + block_input, 0
        self.chain(body)
        body_output = self.current
        self.pinned, self.current = self.pinned + body_output, 0
        self.chain(shortcut)
        self.op(body_output)  # the sum, written while both addends are alive
        self.pinned -= body_output  # the addends are freed once the sum exists
        self.chain(after)
        self.pinned -= block_input

    @property
    def peak_bytes(self) -> int:
        """The peak in bytes of float32 activations."""
        return self.peak * FLOAT32_BYTES


def float32_costs(*, params: int, flops: int, buffer_bytes: int, activations: ActivationPeak) -> Costs:
    """The analytic costs of a float32 network: weights at 4 bytes, memory = weights + buffers +
    the activation peak, latency unmeasured."""
    weights = params * FLOAT32_BYTES
    return Costs(
        params=params,
        flops=flops,
        latency_ms=None,
        size_bytes=weights,
        memory_bytes=weights + buffer_bytes + activations.peak_bytes,
    )


def memory_of(costs: Costs) -> int:
    """``costs.memory_bytes`` of costs a space computed analytically (where it is always set)."""
    if costs.memory_bytes is None:
        raise ValueError(f"These costs have no memory figure: {costs}.")
    return costs.memory_bytes
