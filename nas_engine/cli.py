"""Command line: ``search`` a CSV into a model bundle, ``predict`` a CSV with a bundle."""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

from tqdm import tqdm

from nas_engine import runtime
from nas_engine.config import SearchConfig
from nas_engine.errors import NasError
from nas_engine.export import export_bundle, load_model
from nas_engine.prepare import prepare_data
from nas_engine.results import TrialStatus
from nas_engine.search import run_search
from nas_engine.strategies import STRATEGIES

BAR_FORMAT = "{percentage:3.0f}%|{bar:20}| {elapsed}<{remaining} {postfix}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nas_engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="search an architecture and export the best model")
    search.add_argument("data", help="training CSV")
    search.add_argument("--target", required=True, help="column to predict")
    search.add_argument("--task", choices=("classification", "regression"))
    search.add_argument("--budget-seconds", type=float, default=60)
    search.add_argument("--max-trials", type=int)
    search.add_argument("--max-params", type=int)
    search.add_argument("--max-flops", type=int)
    search.add_argument("--max-latency-ms", type=float)
    search.add_argument("--strategy", choices=sorted(STRATEGIES), default="random")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--out", required=True, help="bundle zip to write")
    predict = commands.add_parser("predict", help="predict a CSV with an exported bundle")
    predict.add_argument("bundle", help="bundle zip written by 'search'")
    predict.add_argument("input", help="CSV to predict")
    predict.add_argument("-o", "--output", help="CSV to write (default: stdout)")
    return parser


def _search(args: argparse.Namespace) -> int:
    config = SearchConfig(
        target=args.target,
        task=args.task,
        budget_seconds=args.budget_seconds,
        max_trials=args.max_trials,
        max_params=args.max_params,
        max_flops=args.max_flops,
        max_latency_ms=args.max_latency_ms,
        strategy=args.strategy,
        seed=args.seed,
    )
    data = prepare_data(args.data, target=config.target, task=config.task, seed=config.seed)
    bar = tqdm(total=100, file=sys.stderr, delay=1, bar_format=BAR_FORMAT)
    with tempfile.TemporaryDirectory() as artifacts, bar:
        scores: list[float] = []

        def on_trial(trial):
            if trial.status is TrialStatus.COMPLETED:
                scores.append(trial.metrics["score"])
            bar.set_postfix(trials=trial.number + 1, best=f"{max(scores):.4f}" if scores else "-")

        def on_status(event):
            bar.update(round(event.progress * 100) - bar.n)

        result = run_search(config, data, on_trial=on_trial, on_status=on_status, artifacts_dir=artifacts)
        bar.set_postfix(
            trials=len(result.trials), best=f"{max(scores):.4f}" if scores else "-", front=len(result.front)
        )
        if result.best is None:
            raise NasError("No trial completed within the budget and limits; raise the budget or loosen the limits.")
        best = result.best
        model = load_model(best.architecture, best.weights_path, n_inputs=data.n_features, n_outputs=data.n_outputs)
        export_bundle(
            model=model,
            architecture=best.architecture,
            preprocessing=data.preprocessing,
            metrics={**best.metrics, "test": result.test_metrics},
            out_path=args.out,
            dataset_name=Path(args.data).name,
            costs=best.costs,
            extra={"seed": config.seed, "config": config.to_dict(), "trial": best.number},
        )
    metric = "accuracy" if result.task == "classification" else "r2"
    sys.stderr.write(
        f"Saved {args.out}: trial {best.number} of {len(result.trials)}, {metric} "
        f"{best.metrics[metric]:.4f} on validation, {result.test_metrics[metric]:.4f} on test.\n"
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    try:
        with zipfile.ZipFile(args.bundle) as bundle, tempfile.TemporaryDirectory() as tmp:
            bundle.extractall(tmp)
            argv = [args.input, "--bundle-dir", tmp] + (["-o", args.output] if args.output else [])
            return runtime.main(argv)
    except zipfile.BadZipFile:
        raise NasError(f"'{args.bundle}' is not a model bundle (not a zip file).") from None


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Returns:
        0 on success, 2 on bad input (one ``error: ...`` line on stderr).
    """
    args = _parser().parse_args(argv)
    try:
        return _search(args) if args.command == "search" else _predict(args)
    except FileNotFoundError as exc:
        sys.stderr.write(f"error: The file '{exc.filename}' was not found.\n")
        return 2
    except (NasError, ValueError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
