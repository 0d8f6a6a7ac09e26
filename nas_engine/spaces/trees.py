"""Search space of gradient-boosted decision trees, trained by scikit-learn's histogram gradient
boosting and held (and exported) as a torch module of fixed shape.

Why a tree space in a NAS tool: on many real tables a default gradient-boosting model beats every
network a short CPU search finds (``benchmarks/results/tabular_suite.md``); the tabular space trains
a few tree configurations first (its portfolio), so the front, the ensemble and the exported model
can take the stronger family per dataset, judged on the same validation split as the networks.

How the trees become a network (the GEMM form of Nakandala et al., "Hummingbird", OSDI 2020): for
``T`` trees of at most ``L`` leaves (``I = L - 1`` internal nodes each),

- ``go = x[:, feature] <= threshold``            (T, I): which way each node sends the row;
- ``s = go @ paths``                             (T, L): ``paths[t, i, l]`` is +1 when leaf ``l``
  lies left of node ``i``, -1 right of it, 0 off its path;
- ``reached = (s == lefts)``                     (T, L): ``lefts[t, l]`` counts the left turns on the
  path to ``l``; only the leaf the row reaches attains it (a wrong turn anywhere lowers ``s``);
- ``out = (reached @ values) @ assign + baseline``: each tree's leaf value goes to its output
  column (one column per class for multi-class, the positive class's logit for two classes, the
  standardised target for regression); the baseline is the boosting's initial prediction.

Every tensor is a float32 ``nn.Parameter`` that is never trained by gradient (the boosting fits
them), so ``params`` counts the whole model and ``size_bytes`` is its real float32 size. Trees not
grown (early stopping, or the capacity not used yet) have unreachable leaves (``lefts`` -1) and add
nothing. Training adds ``rounds / FILL_EPOCHS`` boosting rounds per epoch (warm start), so the
search's epochs, early stopping on the validation loss, multi-fidelity rungs and the refit's
``best_epoch`` all apply to trees as they do to networks.

Costs are analytic and exact for the built module: ``flops`` counts the multiply-accumulates of the
three products (``T·I·L + T·L + T·O``; gathers and comparisons are not counted, as activations are
not for networks). ``memory_bytes`` follows the forward pass op by op (a boolean mask counts a
quarter of a float).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from nas_engine.results import Costs
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.memory import ActivationPeak, float32_costs
from nas_engine.spaces.training import pick

ROUNDS = (100, 200, 400)  # the most boosting rounds (trees per class) a model may grow
LEAVES = (7, 15, 31)  # the most leaves a tree may have
LEARNING_RATES = (0.05, 0.1, 0.2)
MIN_LEAF = (5, 20, 50)  # the fewest training rows a leaf may hold
L2 = (0.0, 1.0)
FILL_EPOCHS = 20  # epochs that grow a model to its capacity (each adds rounds / FILL_EPOCHS rounds)
DECISIONS = {"rounds": ROUNDS, "leaves": LEAVES, "lr": LEARNING_RATES, "min_leaf": MIN_LEAF, "l2": L2}


class TreeSpace(SearchSpace):
    """Gradient-boosted trees: how many rounds, how many leaves, the learning rate, the smallest
    leaf and the L2 penalty on leaf values.

    Genome: ``{"space": "trees", "rounds": 400, "leaves": 31, "lr": 0.1, "min_leaf": 20, "l2": 0.0}``.
    """

    name = "trees"
    max_epochs = FILL_EPOCHS
    patience = 3
    words = ("Gradient-boosted decision trees", "tabular data")

    def sample(self, rng: np.random.Generator) -> dict:
        return {"space": self.name} | {name: pick(options, rng) for name, options in DECISIONS.items()}

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        child = copy.deepcopy(tree_defaults(arch))
        name = pick(tuple(DECISIONS), rng)
        child[name] = pick(DECISIONS[name], rng, other_than=child[name])
        return child

    def decisions(self) -> dict[str, tuple]:
        return dict(DECISIONS)

    def from_decisions(self, choices: dict) -> dict:
        return {"space": self.name} | {name: choices[name] for name in DECISIONS}

    def to_decisions(self, arch: dict) -> dict:
        arch = tree_defaults(arch)
        return {name: arch[name] for name in DECISIONS}

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        from nas_engine.boosted import BoostedTrees  # torch and scikit-learn, only when a model is built

        arch = tree_defaults(arch)
        return BoostedTrees(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            rounds=arch["rounds"],
            leaves=arch["leaves"],
            settings={
                "learning_rate": arch["lr"],
                "min_samples_leaf": arch["min_leaf"],
                "l2_regularization": arch["l2"],
            },
            fill_epochs=FILL_EPOCHS,
        )

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        arch = tree_defaults(arch)
        trees, leaves = arch["rounds"] * trees_per_round(n_outputs), arch["leaves"]
        return _costs(trees, leaves, n_inputs, n_outputs)

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return _costs(ROUNDS[0] * trees_per_round(n_outputs), LEAVES[0], n_inputs, n_outputs).params

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return _costs(ROUNDS[0] * trees_per_round(n_outputs), LEAVES[0], n_inputs, n_outputs).flops

    def smallest_memory(self, n_inputs: int, n_outputs: int) -> int:
        return _costs(ROUNDS[0] * trees_per_round(n_outputs), LEAVES[0], n_inputs, n_outputs).memory_bytes or 0

    def describe(self, arch: dict) -> list[str]:
        arch = tree_defaults(arch)
        return [
            f"Gradient-boosted trees: up to {arch['rounds']} rounds of trees with at most {arch['leaves']} leaves",
            f"At least {arch['min_leaf']} training rows a leaf, L2 penalty {arch['l2']:g} on leaf values",
            f"Training: histogram gradient boosting (scikit-learn), learning rate {arch['lr']:g}, "
            f"{math.ceil(arch['rounds'] / FILL_EPOCHS)} rounds an epoch, stopped early on the validation loss",
        ]


def tree_defaults(arch: dict) -> dict:
    """``arch`` with every key of the tree genome (scikit-learn's defaults where one is missing)."""
    return {
        "space": "trees",
        "rounds": int(arch.get("rounds", 400)),
        "leaves": int(arch.get("leaves", 31)),
        "lr": float(arch.get("lr", 0.1)),
        "min_leaf": int(arch.get("min_leaf", 20)),
        "l2": float(arch.get("l2", 0.0)),
    }


def trees_per_round(n_outputs: int) -> int:
    """Trees a boosting round adds: one per class for three or more classes, else one."""
    return n_outputs if n_outputs > 2 else 1


def _costs(trees: int, leaves: int, n_inputs: int, n_outputs: int) -> Costs:
    nodes = leaves - 1
    params = 2 * trees * nodes + trees * nodes * leaves + 2 * trees * leaves + trees * n_outputs + n_outputs
    flops = trees * nodes * leaves + trees * leaves + trees * n_outputs
    peak = ActivationPeak(n_inputs)
    peak.chain(
        [
            trees * nodes,  # the nodes' feature values
            math.ceil(trees * nodes / 4),  # which way each goes (booleans)
            trees * nodes,  # as floats
            trees * leaves,  # the path sums
            math.ceil(trees * leaves / 4),  # the leaf each tree reaches (booleans)
            trees * leaves,  # as floats
            trees,  # each tree's value
            n_outputs,  # summed per output
            n_outputs,  # plus the baseline
        ]
    )
    return float32_costs(params=params, flops=flops, buffer_bytes=0, activations=peak)
