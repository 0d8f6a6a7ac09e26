"""Images end to end: sklearn's 1,797 digits written as 8×8 PNG files in class folders and zipped,
converted by the engine's image upload code, searched with CNNs, the recommended model refit,
scored on the held-out test images and exported as a verified bundle; against sklearn's SVC and
logistic regression fit on the very same train+validation pixels. Writes
benchmarks/results/images.{md,json}.

    python -m benchmarks.images        # BENCH_BUDGET_SECONDS (60) of search, then refit and export
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.svm import SVC

import nas_engine
from benchmarks.report import write_table
from benchmarks.search_quality import FIDELITY, QUICK, STRATEGY
from tests.data_files import write_digit_pngs, zip_folder

BUDGET_SECONDS = float(os.environ.get("BENCH_BUDGET_SECONDS", "20" if QUICK else "60"))


def run(workdir: Path) -> list[dict]:
    pngs = write_digit_pngs(workdir / "pngs")
    archive = zip_folder(pngs, workdir / "digits.zip")
    image_set = workdir / "digits.npz"
    profile = nas_engine.convert_image_upload(archive, image_set, filename="digits.zip")
    data = nas_engine.prepare_data(image_set, target="label", seed=0)
    x_train = np.concatenate([data.X_train, data.X_val])
    y_train = np.concatenate([data.y_train, data.y_val])
    baselines = {
        name: float(accuracy_score(data.y_test, model.fit(x_train, y_train).predict(data.X_test)))
        for name, model in {"svc": SVC(), "logistic": LogisticRegression(max_iter=5000)}.items()
    }
    # The same search without and with shifted training images (the web's default for grey images).
    return [_search(data, profile, baselines, augment, workdir / augment) for augment in ("none", "shift")]


def _search(data, profile, baselines: dict, augment: str, workdir: Path) -> dict:
    config = nas_engine.SearchConfig(
        target="label", budget_seconds=BUDGET_SECONDS, seed=0, strategy=STRATEGY, fidelity=FIDELITY, augment=augment
    )
    started = time.monotonic()
    result = nas_engine.run_search(config, data, artifacts_dir=workdir)
    finals = nas_engine.finalize_front(result, data, artifacts_dir=workdir, seed=0)
    elapsed = time.monotonic() - started
    chosen = result.recommended
    final = finals.get(chosen.number)
    model = nas_engine.load_final_model(
        chosen.architecture, final.weights_path, n_inputs=data.n_features, n_outputs=data.n_outputs
    )
    bundle = workdir / "bundle.zip"
    # The export runs the bundle's own predict.py on the raw test rows and refuses a disagreement.
    nas_engine.export_bundle(
        model=model,
        architecture=chosen.architecture,
        preprocessing=data.preprocessing,
        metrics={"validation": chosen.metrics, "test": final.test_metrics},
        out_path=bundle,
        dataset_name="digits.zip",
        costs=chosen.costs,
        check_rows=data.raw_test_rows,
    )
    nas = final.test_metrics["accuracy"]
    best = finals.get(result.best.number).test_metrics["accuracy"]
    ensemble = finals.ensemble_final.test_metrics["accuracy"] if finals.ensemble_final else float("nan")
    return {
        "augment": augment,
        "images": profile.images,
        "size": f"{profile.width}×{profile.height}×{profile.channels}",
        "test_images": len(data.y_test),
        "space": chosen.architecture["space"],
        "trials": len(result.trials),
        "search_and_refit_seconds": round(elapsed, 1),
        "nas_recommended_test_accuracy": round(nas, 4),
        "recommended_params": chosen.costs.params,
        "nas_best_test_accuracy": round(best, 4),
        "nas_ensemble_test_accuracy": round(ensemble, 4),
        "svc_test_accuracy": round(baselines["svc"], 4),
        "logistic_test_accuracy": round(baselines["logistic"], 4),
        "nas_minus_svc": round(nas - baselines["svc"], 4),
        "bundle_size_bytes": bundle.stat().st_size,
    }


def write(rows: list[dict]) -> Path:
    return write_table(
        "images",
        rows,
        title=f"Images: digits as PNG files, {STRATEGY} + {FIDELITY}, {BUDGET_SECONDS:g} s of search (seed 0)",
        notes=[
            "The zip of class folders goes through nas_engine.convert_image_upload (the web upload's code);",
            "the recommended model (what the web and the CLI export by default) is refit on train+validation,",
            "exported as a verified bundle, and scored once on the test split; so are the best and the top-3",
            "ensemble.",
            "SVC and logistic regression are fit on the same train+validation pixels (standardised per pixel).",
        ],
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        sys.stdout.write(write(run(Path(directory))).read_text())
