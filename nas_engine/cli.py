"""Command line: ``search`` a CSV (or an image upload) into a model bundle, ``predict`` a CSV or
images with a bundle."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nas_engine import runtime
from nas_engine.bundle_files import extract_bundle
from nas_engine.config import DEFAULT_EXPORT, DEFAULT_REFIT, REFIT_CHOICES, SearchConfig
from nas_engine.errors import NasError
from nas_engine.export import export_bundle
from nas_engine.final_model import load_final_model
from nas_engine.finalize import finalize_front, refit_on_all_rows
from nas_engine.images import convert_image_upload, is_image_upload, read_image_meta
from nas_engine.metrics import Metric, metric_of
from nas_engine.model_card import split_rows
from nas_engine.one_shot_phase import SUPERNET_FILE
from nas_engine.pareto import pareto_front_nd
from nas_engine.prepare import PreparedData, prepare_data
from nas_engine.reference import Reference, reference_score
from nas_engine.results import (
    StatusEvent,
    TrialResult,
    TrialStatus,
    is_compressed,
    is_ensemble,
    objective_vector,
)
from nas_engine.search import run_search
from nas_engine.selection import EXPORT_ALIASES, EXPORT_CHOICES, default_choice
from nas_engine.spaces import make_space

TRIALS_FILE = "trials.json"  # what --keep writes and --warm-start reads
BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar:20}| {elapsed}<{remaining} left{postfix}"


def _add_settings(search: argparse.ArgumentParser) -> None:
    """A flag for every ``SearchConfig`` setting, from its field: the name (``--max-params`` for
    ``max_params``), the type, the default and the ``help``/``choices``/``aliases`` its metadata holds."""
    for setting in dataclasses.fields(SearchConfig):
        flag, meta = "--" + setting.name.replace("_", "-"), dict(setting.metadata)
        choices = meta.get("choices")
        options: dict[str, Any] = {"help": meta.get("help")}
        if choices is not None:
            options["choices"] = list(choices() if callable(choices) else choices)
        if setting.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = setting.default
        kind = str(setting.type)
        if kind == "bool":
            options["action"] = "store_true"
        elif "type" in meta:
            options["type"] = meta["type"]
        elif choices is None:
            options["type"] = int if kind.startswith("int") else float if kind.startswith("float") else str
        search.add_argument(flag, *meta.get("aliases", ()), **options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nas_engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="search an architecture and export the best model")
    search.add_argument(
        "data", help="training CSV, or images: a .zip/.tar.gz/.tgz of class folders, or an .npz with x and y"
    )
    _add_settings(search)
    search.add_argument(
        "--export", choices=(*EXPORT_CHOICES, *EXPORT_ALIASES), default=DEFAULT_EXPORT,
        help="; ".join(f"{name}: {words}" for name, words in EXPORT_CHOICES.items())
        + " (each refit on train+validation; 'recommended' is the old name of 'smallest')",
    )  # fmt: skip
    search.add_argument(
        "--refit", choices=REFIT_CHOICES, default=DEFAULT_REFIT,
        help="all: after the test score is taken, train the exported model again on every row, the test rows "
        "included; train+validation: export the model that was scored",
    )  # fmt: skip
    search.add_argument("--out", required=True, help="bundle zip to write")
    search.add_argument(
        "--keep", metavar="DIR",
        help="also keep the search in DIR (trials.json, and supernet.pt for spos/darts) for a later --warm-start",
    )  # fmt: skip
    search.add_argument(
        "--warm-start", metavar="DIR",
        help="start from a search kept with --keep on data with the same columns: the strategy learns from its "
        "trials first, and spos/darts start from its supernet",
    )  # fmt: skip
    predict = commands.add_parser("predict", help="predict a CSV with an exported bundle")
    predict.add_argument("bundle", help="bundle zip written by 'search'")
    predict.add_argument("input", help="CSV to predict; for a model trained on images, an image, a folder or an .npz")
    predict.add_argument("-o", "--output", help="CSV to write (default: stdout)")
    predict.add_argument(
        "--torchscript", action="store_true",
        help="run the bundle's model.pt instead of model.onnx; loading TorchScript can run code from the file, "
        "so only for a bundle you trust",
    )  # fmt: skip
    return parser


class _Progress:
    """The search's progress bar on stderr: trials, best score, front size, time left."""

    def __init__(self, objectives: tuple[str, ...], metric: Metric):
        self.objectives, self.metric = objectives, metric
        self.results: list[TrialResult] = []
        self.bar = tqdm(total=100, file=sys.stderr, delay=1, bar_format=BAR_FORMAT)

    def on_trial(self, trial: TrialResult) -> None:
        self.results.append(trial)
        vectors = [objective_vector(r, self.objectives) for r in self.results]
        scores = [r.score for r in self.results if r.status is TrialStatus.COMPLETED and r.score is not None]
        self.bar.set_postfix(
            trials=len(self.results),
            best=f"{self.metric.shown(max(scores)):.4f}" if scores else "-",
            front=len(pareto_front_nd(vectors)),
        )

    def on_status(self, event) -> None:
        if event.status == "running":
            self.bar.update(round(event.progress * 100) - self.bar.n)
        else:
            self.bar.set_description_str(event.status)


def _resolved(config: SearchConfig, data: PreparedData) -> SearchConfig:
    """``config`` with what it left to the space (epochs, patience) as the search ran it."""
    space = make_space(config.space, n_inputs=data.n_features, image_shape=data.image_shape, strategy=config.strategy)
    return config.for_space(space)


def _search(args: argparse.Namespace) -> int:
    config = SearchConfig(**{setting.name: getattr(args, setting.name) for setting in dataclasses.fields(SearchConfig)})
    with tempfile.TemporaryDirectory() as artifacts:
        data_path = Path(args.data)
        if is_image_upload(data_path.name) and read_image_meta(data_path) is None:
            # Converted once into a stored image set, which the tabular pipeline then reads as is.
            data_path = Path(artifacts) / "images.npz"
            convert_image_upload(args.data, data_path, filename=Path(args.data).name)
        data = prepare_data(data_path, **config.data_settings())
        return _search_prepared(args, config, data, artifacts)


def _read_kept(folder: str | None) -> tuple[list[TrialResult], Path | None]:
    """The trials and supernet file a ``--keep`` folder holds (none without a folder).

    Raises:
        NasError: The folder holds no readable trials.json.
    """
    if folder is None:
        return [], None
    path = Path(folder) / TRIALS_FILE
    try:
        trials = [TrialResult.from_dict(item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise NasError(f"'{folder}' is not a search kept with --keep (cannot read {TRIALS_FILE}: {exc}).") from None
    supernet = Path(folder) / SUPERNET_FILE
    return [t for t in trials if not is_ensemble(t.architecture)], supernet if supernet.exists() else None


def _keep(folder: str, result, artifacts: str) -> None:
    """Write the trials (and the supernet, if one was trained) where ``--keep`` asked."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    trials = [dict(t.to_dict(), weights_path=None) for t in result.trials]  # weights stay in a temporary folder
    (out / TRIALS_FILE).write_text(json.dumps(trials), encoding="utf-8")
    supernet = Path(artifacts) / SUPERNET_FILE
    if supernet.exists():
        shutil.copyfile(supernet, out / SUPERNET_FILE)


def _search_prepared(args: argparse.Namespace, config: SearchConfig, data: PreparedData, artifacts: str) -> int:
    progress = _Progress(config.objectives, metric_of(data.preprocessing["target"], data.task))
    warm_trials, warm_supernet = _read_kept(args.warm_start)
    with progress.bar:
        result = run_search(
            config,
            data,
            on_trial=progress.on_trial,
            on_status=progress.on_status,
            artifacts_dir=artifacts,
            warm_start=warm_trials,
            warm_supernet=warm_supernet,
        )
        if args.keep:
            _keep(args.keep, result, artifacts)
        if result.best is None:
            raise NasError("No trial completed within the budget and limits; raise the budget or loosen the limits.")
        reference = _reference(config, data, progress)
        finals = finalize_front(result, data, artifacts_dir=artifacts, seed=config.seed, on_status=progress.on_status)
        export = EXPORT_ALIASES.get(args.export, args.export)
        chosen: TrialResult | None
        if export == "ensemble":
            if finals.ensemble is None:
                raise NasError("An ensemble needs at least two completed trials; search longer or export 'best'.")
            chosen = finals.ensemble
        elif export == "smallest":
            chosen = result.recommended
        elif export == "best":
            chosen = result.best
        else:
            chosen = default_choice(result.best, finals.ensemble)
        if chosen is None:
            raise NasError("No trial could be chosen for export; export 'best' instead.")
        final = finals.get(chosen.number)
        if final is None or final.weights_path is None:
            raise NasError(f"Trial {chosen.number} has no refitted model to export.")
        refit = not is_compressed(chosen.architecture)
        on_all_rows = refit and args.refit == "all"
        model = None
        if on_all_rows:
            progress.on_status(StatusEvent(status="finalizing", progress=1.0, message="Training on all rows."))
            try:
                model = refit_on_all_rows(chosen, finals, data, seed=config.seed, augment=result.augment)
            except FloatingPointError as exc:
                sys.stderr.write(f"(Training on all rows failed: {exc} The train+validation refit is exported.)\n")
                on_all_rows = False
        if model is None:
            model = load_final_model(
                chosen.architecture, final.weights_path, n_inputs=data.n_features, n_outputs=data.n_outputs
            )
        export_bundle(
            model=model,
            architecture=chosen.architecture,
            preprocessing=data.preprocessing,
            metrics={
                "validation": chosen.metrics,
                "test": final.test_metrics,
                "refit_on_train_and_validation": refit,
                "refit_on_all_rows": on_all_rows,
                "refit_epochs": final.epochs,
            },
            out_path=args.out,
            dataset_name=Path(args.data).name,
            costs=chosen.costs,
            extra={
                "seed": config.seed,
                "config": _resolved(config, data).to_dict(),
                "trial": chosen.number,
                "export": export,
                **({"reference": reference.to_dict()} if reference else {}),
            },
            check_rows=data.raw_test_rows,
            splits=split_rows(data),
        )
    metric = metric_of(data.preprocessing["target"], result.task).name
    what = "ensemble" if is_ensemble(chosen.architecture) else "trial"
    after = "after refitting on train+validation" if refit else "as compressed (not refit)"
    if on_all_rows:
        after += ", then trained on all rows"
    if reference is not None:
        sys.stderr.write(f"For comparison: {reference.describe()}\n")
    validation = chosen.metrics.get(metric)
    sys.stderr.write(
        f"Saved {args.out}: {export} choice, {what} {chosen.number} ({len(result.trials)} trials), {metric} "
        f"{'-' if validation is None else f'{validation:.4f}'} on validation, "
        f"{final.test_metrics[metric]:.4f} on test {after}.\n"
    )
    return 0


def _reference(config: SearchConfig, data: PreparedData, progress: _Progress) -> Reference | None:
    """A default gradient-boosting model's score on the search's validation rows, or None when it
    fails (a reference must never cost the search its bundle)."""
    progress.bar.set_description_str("reference")
    try:
        return reference_score(data, folds=config.folds(len(data.X_train)), seed=config.seed)
    except Exception as exc:  # noqa: BLE001 (any failure of scikit-learn: the bundle comes first)
        sys.stderr.write(f"(No gradient-boosting reference: {exc})\n")
        return None


def _predict(args: argparse.Namespace) -> int:
    """Unzip the bundle within limits (it may come from anyone) and run its model: the ONNX one,
    unless ``--torchscript`` asks for model.pt (never a fallback: loading TorchScript can run code)."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            extract_bundle(args.bundle, tmp)
            argv = [args.input, "--bundle-dir", tmp] + (["-o", args.output] if args.output else [])
            if args.torchscript:
                argv += ["--model", str(Path(tmp) / "model.pt")]
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
