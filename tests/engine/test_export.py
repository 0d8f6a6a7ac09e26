"""Bundles: contents, ONNX fidelity, atomic writing, and predict.py matching in-process predictions."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

import nas_engine.export
from nas_engine import DatasetError, SearchConfig, export_bundle, load_final_model, predict_csv, run_search
from nas_engine.export import BUNDLE_FILES
from nas_engine.runtime import format_prediction

from .conftest import write_csv


@pytest.fixture(scope="module")
def trained(mixed_data, tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("artifacts")
    result = run_search(SearchConfig(target="label", max_trials=2, seed=1), mixed_data, artifacts_dir=artifacts)
    best = result.best
    model = load_final_model(
        best.architecture, best.weights_path, n_inputs=mixed_data.n_features, n_outputs=mixed_data.n_outputs
    )
    return best, model


@pytest.fixture(scope="module")
def bundle_dir(trained, mixed_data, tmp_path_factory) -> Path:
    best, model = trained
    out = tmp_path_factory.mktemp("bundle") / "model.zip"
    path = export_bundle(
        model=model,
        architecture=best.architecture,
        preprocessing=mixed_data.preprocessing,
        metrics=best.metrics,
        out_path=out,
        dataset_name="mixed.csv",
        extra={"seed": 1},
        costs=best.costs,
    )
    assert path == out and not out.with_name("model.zip.part").exists()
    with zipfile.ZipFile(path) as bundle:
        assert sorted(bundle.namelist()) == sorted(BUNDLE_FILES)
        bundle.extractall(out.parent / "unzipped")
    return out.parent / "unzipped"


def test_bundle_holds_a_faithful_onnx_model_and_its_records(bundle_dir, trained):
    best, _ = trained
    metrics = json.loads((bundle_dir / "metrics.json").read_text())
    assert metrics["checks"]["onnx_max_abs_diff"] <= 1e-4
    assert metrics["seed"] == 1 and metrics["costs"]["params"] == best.costs.params
    assert set(metrics["versions"]) == {"torch", "numpy", "nas_engine"}
    session = onnxruntime.InferenceSession(str(bundle_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.run(["output"], {"input": np.zeros((5, 7), dtype=np.float32)})[0].shape == (5, 2)
    architecture = json.loads((bundle_dir / "architecture.json").read_text())
    assert architecture["genome"] == best.architecture and architecture["layers"]
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert "**label** (classification)" in card and "python predict.py" in card
    assert (bundle_dir / "predict.py").read_text() == Path(nas_engine.runtime.__file__).read_text()


def test_bundle_predict_py_matches_in_process_predictions(bundle_dir, trained, mixed_data, tmp_path):
    _, model = trained
    # Unseen category, blanks, placeholders, garbage in a numeric column, and no target column.
    rows = [["12.5", "red", "", "3"], ["", "purple", "48.1", "NA"], ["9", "", "?", "x"], ["7.1", "blue", "55", "1"]]
    new_data = write_csv(tmp_path / "new.csv", ["size", "colour", "weight", "code"], rows)
    out = tmp_path / "out.csv"
    subprocess.run([sys.executable, "predict.py", str(new_data), "-o", str(out)], cwd=bundle_dir, check=True)
    expected = predict_csv(model, mixed_data.preprocessing, new_data)
    assert len(expected) == 4 and set(expected) <= {"yes", "no"}
    assert out.read_text().splitlines() == ["prediction"] + [format_prediction(p) for p in expected]
    # Asked for by name (--model model.pt), predict.py runs TorchScript; it must agree too.
    fallback = subprocess.run(
        [sys.executable, "predict.py", str(new_data), "--model", "model.pt"],
        cwd=bundle_dir,
        check=True,
        capture_output=True,
        text=True,
    )
    assert fallback.stdout == out.read_text()


def test_bundle_predict_py_reports_a_missing_feature_column(bundle_dir, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["size", "colour"], [["1", "red"]])
    out = tmp_path / "out.csv"
    run = subprocess.run(
        [sys.executable, "predict.py", str(bad), "-o", str(out)], cwd=bundle_dir, capture_output=True, text=True
    )
    assert run.returncode == 2 and not out.exists()
    assert run.stderr == "error: The input is missing column(s): weight, code.\n"


def test_predict_csv_reports_a_missing_feature_column(trained, mixed_data, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["size"], [["1"]])
    with pytest.raises(DatasetError, match="missing column"):
        predict_csv(trained[1], mixed_data.preprocessing, bad)


def test_failed_export_leaves_no_file(trained, mixed_data, tmp_path, monkeypatch):
    best, model = trained

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(nas_engine.export, "_export_torchscript", broken)
    out = tmp_path / "model.zip"
    with pytest.raises(RuntimeError):
        export_bundle(
            model=model,
            architecture=best.architecture,
            preprocessing=mixed_data.preprocessing,
            metrics=best.metrics,
            out_path=out,
        )
    assert list(tmp_path.iterdir()) == []


def test_export_checks_predict_py_on_given_raw_rows_and_records_it(trained, mixed_data, mixed_csv, tmp_path):
    best, model = trained
    from nas_engine.runtime import read_csv_rows

    rows = read_csv_rows(mixed_csv)[:40]
    path = export_bundle(
        model=model,
        architecture=best.architecture,
        preprocessing=mixed_data.preprocessing,
        metrics=best.metrics,
        out_path=tmp_path / "checked.zip",
        check_rows=rows,
    )
    with zipfile.ZipFile(path) as bundle:
        checks = json.loads(bundle.read("metrics.json"))["checks"]
    assert checks["rows"] == 40 and checks["rows_source"] == "given"
    assert checks["predict_py_reproduces_predictions"] is True
    assert checks["onnx_max_abs_diff"] <= checks["onnx_tolerance"] == 1e-4


def test_same_predictions_compares_labels_exactly_and_numbers_in_target_standard_deviations():
    from nas_engine.export import _same_predictions

    assert _same_predictions(["yes", "no"], ["yes", "no"])
    assert not _same_predictions(["yes", "no"], ["yes", "yes"])
    assert _same_predictions(["1.00000001"], [1.0])
    assert not _same_predictions(["1.01"], [1.0])
    assert not _same_predictions(["1.0"], [1.0, 2.0])
    # The price model: negative predictions near zero, a target std of thousands. float32
    # noise of about 1e-6 std failed a relative tolerance of 1e-4; in target stds it is nothing.
    assert _same_predictions(["-9.76", "-23.097"], [-9.758, -23.100], scale=5000.0)
    assert _same_predictions(["0.0031"], [-0.0012], scale=5000.0)  # crossing zero
    # A target in the thousands with a small spread: what matters is the spread, not the size.
    assert _same_predictions(["1523.4567"], [1523.4568], scale=50.0)
    assert not _same_predictions(["1523.5"], [1523.4], scale=50.0)  # 0.002 std off: a real error
    assert not _same_predictions(["-9.76"], [-19.76], scale=5000.0)  # 0.002 std off


def _regression_bundle(tmp_path: Path, name: str, target) -> tuple[Path, object, object]:
    """Search a tiny regression whose target is ``target(x1, x2)``, export the best model checked on
    its test rows; returns the unzipped bundle, the model and the prepared data."""
    from nas_engine import prepare_data

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2))
    y = target(x[:, 0], x[:, 1]) + rng.normal(scale=0.05, size=300) * np.std(target(x[:, 0], x[:, 1]))
    rows = [[f"{a:.5f}", f"{b:.5f}", f"{v:.4f}"] for (a, b), v in zip(x, y, strict=True)]
    data = prepare_data(write_csv(tmp_path / f"{name}.csv", ["x1", "x2", "y"], rows), target="y", seed=0)
    config = SearchConfig(target="y", max_trials=1, max_epochs=20, seed=0, cv_folds=1)
    result = run_search(config, data, artifacts_dir=tmp_path / "artifacts")
    best = result.best
    model = load_final_model(best.architecture, best.weights_path, n_inputs=data.n_features, n_outputs=1)
    path = export_bundle(
        model=model,
        architecture=best.architecture,
        preprocessing=data.preprocessing,
        metrics=best.metrics,
        out_path=tmp_path / f"{name}.zip",
        check_rows=data.raw_test_rows,
    )
    with zipfile.ZipFile(path) as bundle:
        checks = json.loads(bundle.read("metrics.json"))["checks"]
        bundle.extractall(tmp_path / name)
    assert checks["predict_py_reproduces_predictions"] is True and checks["rows"] == len(data.raw_test_rows)
    assert checks["predict_py_tolerance_target_std"] == nas_engine.export.PARITY_TOLERANCE
    return tmp_path / name, model, data


def test_a_regression_target_in_the_thousands_exports_and_its_predict_py_matches(tmp_path):
    folder, model, data = _regression_bundle(tmp_path, "thousands", lambda a, b: 1000 + 500 * np.tanh(a) + 80 * b)
    predictions = predict_csv(model, data.preprocessing, tmp_path / "thousands.csv")
    assert 0 < min(predictions) and max(predictions) < 2500  # in the target's thousands, not standardised units


def test_a_regression_whose_predictions_cross_zero_exports_and_a_wrong_predict_py_still_fails(tmp_path):
    folder, model, data = _regression_bundle(tmp_path, "signed", lambda a, b: 4000 * a - 1500 * b)
    predictions = predict_csv(model, data.preprocessing, tmp_path / "signed.csv")
    assert min(predictions) < -1000 and max(predictions) > 1000
    rows = [list(row.values()) for row in data.raw_test_rows]
    write_csv(folder / "check_rows.csv", list(data.raw_test_rows[0]), rows)
    expected = predict_csv(model, data.preprocessing, folder / "check_rows.csv")
    scale = nas_engine.export.target_scale(data.preprocessing, expected)
    nas_engine.export._run_predict_py(folder, "check_rows.csv", expected, what="the test rows", scale=scale)
    # The same predict.py, given a target mean off by 1 % of a standard deviation: refused.
    preprocessing = json.loads((folder / "preprocessing.json").read_text())
    preprocessing["target"]["mean"] += 0.01 * preprocessing["target"]["std"]
    (folder / "preprocessing.json").write_text(json.dumps(preprocessing))
    with pytest.raises(nas_engine.NasError, match="does not reproduce"):
        nas_engine.export._run_predict_py(folder, "check_rows.csv", expected, what="the test rows", scale=scale)


@pytest.mark.slow
def test_an_image_model_searched_on_pixel_columns_exports_a_faithful_bundle(tmp_path):
    """load_digits as 64 pixel columns: auto picks the CNN space, and its bundle reproduces it."""
    from sklearn.datasets import load_digits

    from nas_engine import finalize_front, load_final_model, prepare_data

    csv_path = tmp_path / "digits.csv"
    load_digits(as_frame=True).frame.to_csv(csv_path, index=False)
    data = prepare_data(csv_path, target="target", seed=0)
    assert data.image_shape == (1, 8, 8)
    config = SearchConfig(target="target", max_trials=2, max_epochs=3, seed=0, budget_seconds=60)
    result = run_search(config, data, artifacts_dir=tmp_path / "artifacts")
    assert result.best.architecture["space"] == "cnn"
    final = finalize_front(result, data, artifacts_dir=tmp_path / "artifacts", seed=0, ensemble_size=0)
    weights = final.get(result.best.number).weights_path
    model = load_final_model(result.best.architecture, weights, n_inputs=64, n_outputs=10)
    path = export_bundle(
        model=model,
        architecture=result.best.architecture,
        preprocessing=data.preprocessing,
        metrics=result.best.metrics,
        out_path=tmp_path / "digits.zip",
        check_rows=data.raw_test_rows,
    )
    with zipfile.ZipFile(path) as bundle:
        checks = json.loads(bundle.read("metrics.json"))["checks"]
        bundle.extractall(tmp_path / "bundle")
    assert checks["rows"] == len(data.raw_test_rows) and checks["onnx_max_abs_diff"] <= 1e-4
    out = tmp_path / "predictions.csv"
    done = subprocess.run(
        [sys.executable, "predict.py", str(csv_path), "-o", str(out)], cwd=tmp_path / "bundle", capture_output=True
    )
    assert done.returncode == 0, done.stderr
    from_bundle = out.read_text().splitlines()[1:]
    assert from_bundle == [format_prediction(p) for p in predict_csv(model, data.preprocessing, csv_path)]
    assert np.mean(np.array(from_bundle) == load_digits().target.astype(str)) > 0.5
