"""`python -m nas_engine`: search then predict end to end, and one clear line for bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from nas_engine import config
from nas_engine.cli import _parser, main
from nas_engine.config import SearchConfig
from nas_engine.spaces import make_space

from .conftest import write_csv


@pytest.mark.slow
def test_search_then_predict_end_to_end(diabetes_csv, tmp_path):
    bundle, out = tmp_path / "diabetes.zip", tmp_path / "predictions.csv"
    search = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas_engine",
            "search",
            str(diabetes_csv),
            "--target",
            "progression",
            "--budget-seconds",
            "10",
            "--max-trials",
            "3",
            "--max-params",
            "20000",
            "--seed",
            "2",
            "--keep",
            str(tmp_path / "kept"),
            "--out",
            str(bundle),
        ],
        capture_output=True,
        text=True,
    )
    assert search.returncode == 0, search.stderr
    assert zipfile.ZipFile(bundle).testzip() is None
    # The default export: the ensemble when it beats the best single model on validation, else that model.
    with zipfile.ZipFile(bundle) as archive:
        record = json.loads(archive.read("metrics.json"))
        genome = json.loads(archive.read("architecture.json"))["genome"]
        card = archive.read("MODEL_CARD.md").decode()
    trials = json.loads((tmp_path / "kept" / "trials.json").read_text())
    best = max((t for t in trials if t["status"] == "completed"), key=lambda t: t["metrics"]["score"])
    assert record["export"] == "auto" and record["config"]["strategy"] == SearchConfig.default("strategy")
    if genome["space"] == "ensemble":
        assert record["metrics"]["validation"]["score"] > best["metrics"]["score"]
    else:
        assert record["trial"] == best["number"]
    # The card says which rows each number came from; the reference is printed and recorded.
    splits = record["splits"]
    assert splits["train"] + splits["validation"] + splits["test"] == 442
    fit_rows = splits["train"] + splits["validation"]
    assert (
        f"trained again from scratch on the training and validation splits ({fit_rows} rows)" in card
        and f"scored once on the test split ({splits['test']} rows)" in card
    )
    reference = record["reference"]
    assert reference["model"] == "HistGradientBoostingRegressor" and reference["metric"] == "r2"
    assert f"For comparison: A default gradient-boosting model scores {reference['score']:.4g} (R²)" in search.stderr
    assert "auto choice" in search.stderr.splitlines()[-1]
    predict = subprocess.run(
        [sys.executable, "-m", "nas_engine", "predict", str(bundle), str(diabetes_csv), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert predict.returncode == 0, predict.stderr
    with open(out, newline="") as handle:
        predictions = [float(row["prediction"]) for row in csv.DictReader(handle)]
    with open(diabetes_csv, newline="") as handle:
        truth = [float(row["progression"]) for row in csv.DictReader(handle)]
    # the target runs from 25 to 346; a regression may step a little outside it, but must follow it
    assert len(predictions) == 442 and 0 < min(predictions) < max(predictions) < 400
    assert np.corrcoef(predictions, truth)[0, 1] > 0.5


@pytest.mark.slow
def test_search_exports_a_refit_ensemble_with_fidelity_and_three_objectives(breast_cancer_csv, tmp_path):
    bundle = tmp_path / "ensemble.zip"
    search = subprocess.run(
        [
            sys.executable, "-m", "nas_engine", "search", str(breast_cancer_csv), "--target", "diagnosis",
            "--budget-seconds", "6", "--strategy", "aging_evolution", "--fidelity", "successive_halving",
            "--objectives", "params,latency_ms", "--export", "ensemble", "--seed", "3", "--refit", "all",
            "--out", str(bundle),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    assert "ensemble" in search.stderr.splitlines()[-1] and "then trained on all rows" in search.stderr
    with zipfile.ZipFile(bundle) as archive:
        record = json.loads(archive.read("metrics.json"))
        genome = json.loads(archive.read("architecture.json"))["genome"]
        card = archive.read("MODEL_CARD.md").decode()
    assert record["metrics"]["refit_on_all_rows"] is True
    assert "then trained again, the same way, on every row, the test split's included (569 rows)" in card
    assert genome["space"] == "ensemble" and len(genome["members"]) >= 2
    assert record["config"]["objectives"] == ["score", "params", "latency_ms"]
    assert record["checks"]["rows_source"] == "given" and record["checks"]["predict_py_reproduces_predictions"]
    assert record["metrics"]["test"]["accuracy"] > 0.63  # the majority class is 357 of 569


def test_the_cli_starts_from_the_configs_defaults_and_still_takes_the_old_export_name():
    args = _parser().parse_args(["search", "data.csv", "--target", "y", "--out", "m.zip"])
    for name in ("strategy", "fidelity", "budget_seconds", "space", "objectives", "eta", "min_epochs", "seed"):
        assert getattr(args, name) == SearchConfig.default(name), name
    assert (args.strategy, args.fidelity) == (config.DEFAULT_STRATEGY, config.DEFAULT_FIDELITY)
    assert args.export == config.DEFAULT_EXPORT == "auto"
    assert args.refit == config.DEFAULT_REFIT == "all"  # the web app trains its recommended model the same way
    old = _parser().parse_args(["search", "d.csv", "--target", "y", "--out", "m.zip", "--export", "recommended"])
    assert old.export == "recommended"  # exported as 'smallest': the cheapest within one standard error


def test_every_setting_of_the_config_is_a_flag_whose_value_reaches_the_config():
    given = {
        "target": "y", "task": "classification", "budget_seconds": "12.5", "max_trials": "7", "max_params": "1000",
        "max_flops": "2000", "max_size_bytes": "3000", "max_memory_bytes": "4000", "max_latency_ms": "0.5",
        "strategy": "random", "space": "mlp", "objectives": "flops,latency_ms", "seed": "3", "max_epochs": "9",
        "patience": "2", "fidelity": "hyperband", "eta": "4", "min_epochs": "2", "cv_folds": "1", "augment": "shift",
        "ignore": "id, name", "class_weights": "balanced", "metric": "f1_macro", "split": "group:shop",
        "split_ratio": "70/15/15", "column_types": "day=date, zip=categorical",
    }  # fmt: skip
    names = [setting.name for setting in dataclasses.fields(SearchConfig)]
    assert sorted(names) == sorted([*given, "compress"])  # a new setting must be added here, and is a flag at once
    argv = ["search", "d.csv", "--out", "m.zip", "--compress"]
    for name, value in given.items():
        argv += ["--" + name.replace("_", "-"), value]
    args = _parser().parse_args(argv)
    built = SearchConfig(**{name: getattr(args, name) for name in names})
    assert built == SearchConfig(
        target="y", task="classification", budget_seconds=12.5, max_trials=7, max_params=1000, max_flops=2000,
        max_size_bytes=3000, max_memory_bytes=4000, max_latency_ms=0.5, strategy="random", space="mlp",
        objectives=("score", "flops", "latency_ms"), seed=3, max_epochs=9, patience=2, fidelity="hyperband", eta=4,
        min_epochs=2, cv_folds=1, augment="shift", compress=True, ignore=("id", "name"), class_weights="balanced",
        metric="f1_macro", split="group:shop", split_ratio="70/15/15", column_types=("day=date", "zip=categorical"),
    )  # fmt: skip
    flags = ["search", "d.csv", "--target", "y", "--out", "m", "--column-type", "a=date"]
    assert _parser().parse_args(flags).column_types == ("a=date",)  # the singular name, as written in the docs
    with pytest.raises(ValueError, match="would mix the rows a time split keeps apart"):
        SearchConfig(target="y", split="time:day", cv_folds=5)
    assert SearchConfig(target="y", split="time:day").folds(200) == 1  # its validation split stands
    assert SearchConfig(target="y").folds(200) == 5  # random: small data is cross-validated
    with pytest.raises(ValueError, match="Class weights apply to classification"):
        SearchConfig(target="y", task="regression", class_weights="balanced")
    with pytest.raises(ValueError, match="'y' is the target: it cannot also be ignored"):
        SearchConfig(target="y", ignore=("id", "y"))
    with pytest.raises(SystemExit):  # choices come from the registries
        _parser().parse_args(["search", "d.csv", "--out", "m.zip", "--target", "y", "--space", "nonesuch"])


def test_max_epochs_and_patience_reach_every_trial_and_the_bundle_records_them(mixed_csv, tmp_path):
    out, kept = tmp_path / "model.zip", tmp_path / "kept"
    flags = ["--budget-seconds", "10", "--max-trials", "2", "--max-epochs", "2", "--patience", "1", "--keep", str(kept)]
    assert main(["search", str(mixed_csv), "--target", "label", *flags, "--out", str(out)]) == 0
    trained = [t for t in json.loads((kept / "trials.json").read_text()) if t["status"] == "completed"]
    assert trained and all(t["metrics"]["epochs"] <= 2 for t in trained)
    with zipfile.ZipFile(out) as archive:
        config = json.loads(archive.read("metrics.json"))["config"]
    assert (config["max_epochs"], config["patience"]) == (2, 1)


def test_epochs_left_to_the_space_resolve_to_its_own():
    unset = SearchConfig(target="y")
    assert (unset.max_epochs, unset.patience) == (None, None)
    for name in ("mlp", "tabular"):
        space = make_space(name, n_inputs=4)
        resolved = unset.for_space(space)
        assert (resolved.max_epochs, resolved.patience) == (space.max_epochs, space.patience) == (50, 5)
        assert SearchConfig(target="y", max_epochs=7, patience=2).for_space(space).max_epochs == 7


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_unknown_target_exits_2_without_output(mixed_csv, tmp_path, capsys):
    out = tmp_path / "model.zip"
    assert main(["search", str(mixed_csv), "--target", "nope", "--out", str(out)]) == 2
    assert "Column 'nope' is not in the dataset" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_missing_data_file_exits_2(tmp_path, capsys):
    assert main(["search", str(tmp_path / "gone.csv"), "--target", "y", "--out", str(tmp_path / "m.zip")]) == 2
    assert "was not found" in _one_error_line(capsys)


def test_impossible_limit_exits_2_without_output(mixed_csv, tmp_path, capsys):
    out = tmp_path / "model.zip"
    assert main(["search", str(mixed_csv), "--target", "label", "--max-params", "10", "--out", str(out)]) == 2
    assert "No network fits under 10 parameters: the smallest one for this data has" in _one_error_line(capsys)
    assert not out.exists()
    assert main(["search", str(mixed_csv), "--target", "label", "--max-memory-bytes", "10", "--out", str(out)]) == 2
    assert "No network runs in 10 bytes of memory: the leanest one" in _one_error_line(capsys)
    assert not out.exists()


def test_binary_upload_exits_2(tmp_path, capsys):
    garbage = tmp_path / "photo.csv"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert main(["search", str(garbage), "--target", "y", "--out", str(tmp_path / "m.zip")]) == 2
    assert "does not look like a CSV" in _one_error_line(capsys)


def test_predict_with_a_bad_bundle_or_missing_column_exits_2(tmp_path, capsys):
    not_a_zip = write_csv(tmp_path / "fake.zip", ["a"], [["1"]])
    assert main(["predict", str(not_a_zip), str(not_a_zip), "-o", str(tmp_path / "out.csv")]) == 2
    assert "not a model bundle" in _one_error_line(capsys)
    assert main(["predict", str(tmp_path / "gone.zip"), str(not_a_zip)]) == 2
    assert "was not found" in _one_error_line(capsys)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
def test_keep_then_warm_start_a_weight_sharing_search(breast_cancer_csv, tmp_path, capsys):
    kept = tmp_path / "kept"
    common = [str(breast_cancer_csv), "--target", "diagnosis", "--strategy", "spos", "--budget-seconds", "15"]
    common += ["--max-trials", "2", "--seed", "0"]
    assert main(["search", *common, "--out", str(tmp_path / "a.zip"), "--keep", str(kept)]) == 0
    trials = json.loads((kept / "trials.json").read_text())
    assert len(trials) >= 2 and all(t["weights_path"] is None for t in trials)
    assert (kept / "supernet.pt").exists()
    assert main(["search", *common, "--out", str(tmp_path / "b.zip"), "--warm-start", str(kept)]) == 0
    assert zipfile.ZipFile(tmp_path / "b.zip").testzip() is None

    capsys.readouterr()
    assert main(["search", *common, "--out", str(tmp_path / "c.zip"), "--warm-start", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a search kept with --keep" in err and err.count("\n") == 1
    assert not (tmp_path / "c.zip").exists()


def test_the_engine_and_the_project_state_one_version():
    import tomllib
    from pathlib import Path

    import nas_engine

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["version"] == nas_engine.__version__  # the version bundles record


def test_an_ignored_column_never_reaches_the_model_and_predict_still_accepts_it(mixed_csv, tmp_path):
    bundle = tmp_path / "m.zip"
    argv = ["search", str(mixed_csv), "--target", "label", "--budget-seconds", "20", "--max-trials", "2"]
    argv += ["--class-weights", "balanced"]  # and the classes weighed alike
    assert main([*argv, "--space", "mlp", "--ignore", "colour, code", "--out", str(bundle)]) == 0
    with zipfile.ZipFile(bundle) as archive:
        prep = json.loads(archive.read("preprocessing.json"))
        metrics = json.loads(archive.read("metrics.json"))
        card = archive.read("MODEL_CARD.md").decode()
    assert prep["feature_columns"] == ["size", "weight"] and prep["ignored_columns"] == ["colour", "code"]
    assert prep["n_features"] == 2  # two numbers; no one-hot slots of colour or code
    assert metrics["config"]["ignore"] == ["colour", "code"]
    assert "Ignored columns (2): colour, code." in card
    weights = prep["target"]["class_weights"]
    assert len(weights) == 2 and metrics["config"]["class_weights"] == "balanced"
    assert "Trained with balanced class weights" in card
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(bundle), str(mixed_csv), "-o", str(out)]) == 0  # the file still has them
    with open(out, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 200
