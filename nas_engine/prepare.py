"""Split a dataset and fit its preprocessing on the training rows only."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas_engine.batches import PixelRows, Rows
from nas_engine.dataset import detect_task, is_numeric, read_table, unknown_column_error
from nas_engine.errors import DatasetError, TargetError
from nas_engine.evaluator import CLASS_WEIGHTS
from nas_engine.images import TARGET as IMAGE_TARGET
from nas_engine.images import read_image_meta, stored_arrays
from nas_engine.metrics import metric_named
from nas_engine.runtime import (
    DATE_PARTS,
    PIXEL_CELLS,
    category_of,
    date_parts,
    encode_columns,
    feature_width,
    is_missing,
    label_sort_key,
    parse_number,
    parse_numbers,
)
from nas_engine.spaces import detect_image_shape
from nas_engine.splits import Split, parse_ratio, split_rows

TASKS = ("classification", "regression")
COLUMN_TYPES = ("numeric", "categorical", "date")  # how a column may be read (SearchConfig.column_types)
MIN_ROWS = 10
MAX_CATEGORIES = 50  # rarer categories share the "other" slot, so width stays bounded
MAX_CLASSES = 100
IQR_PER_STD = 1.349  # the interquartile range of a normal distribution, in standard deviations
SMOOTH_CLIP = 3.0  # robust-scaled values are squashed smoothly towards +-3 (RealMLP's choice)
LOG_TARGET_MIN_SKEW = 1.0
LOG_CHECK_MAX_ROWS = 20_000  # rows the log-target check fits on (a few seconds at most)
CHECK_ROWS = 1_000  # raw test rows kept for checking a bundle (PreparedData.raw_test_rows)
CHECK_IMAGES = 100  # of an image set (3,072 cells each at 32×32 RGB)


@dataclass(frozen=True)
class PreparedData:
    """Encoded train/validation/test splits and the preprocessing that produced them.

    Features are float32; labels are int64 class indices (classification) or float32
    standardised targets (regression). An image set's features are ``batches.PixelRows``: its
    uint8 pixels, read as the float32 standardised matrix a batch (or a whole split) at a time.
    ``image_shape`` is ``(C, H, W)`` when the feature columns look like the pixels of an image;
    ``raw_test_rows`` are the test split's raw CSV cells (one dict per row, target included), so
    an export can check predict.py from raw input.
    """

    X_train: Rows
    y_train: np.ndarray
    X_val: Rows
    y_val: np.ndarray
    X_test: Rows
    y_test: np.ndarray
    task: str
    n_features: int
    n_outputs: int
    preprocessing: dict
    target: str
    feature_columns: tuple[str, ...]
    source_rows: int
    image_shape: tuple[int, int, int] | None = None
    raw_test_rows: list[dict] = field(default_factory=list)


def prepare_data(
    path: str | Path,
    *,
    target: str,
    task: str | None = None,
    seed: int = 0,
    ignore: Sequence[str] = (),
    class_weights: str = "none",
    metric: str | None = None,
    split: str = "random",
    ratio: str | None = None,
    column_types: Sequence[str] = (),
) -> PreparedData:
    """Read a CSV (or an image set), split it and encode it for training.

    Rows whose target is missing are dropped. Classification splits are stratified when every
    class has at least two rows.

    Args:
        path: The CSV file, or an image set written by ``images.convert_image_upload`` (its pixel
            columns then become numeric features and ``preprocessing["image"]`` holds its meta).
        target: Name of the column to predict.
        task: ``"classification"`` or ``"regression"``; guessed from the target when None.
        seed: Seed of the split.
        ignore: Input columns the model never sees (an ID, a column that leaks the target); a
            prediction still accepts them and leaves them out. ``preprocessing["ignored_columns"]``
            records them.
        class_weights: ``"balanced"`` weights each class's rows in the training loss by
            ``rows / (classes × rows of that class)`` on the training split (scikit-learn's
            "balanced"), so a rare class counts as much as a common one; recorded as
            ``preprocessing["target"]["class_weights"]`` (one per label). ``"none"``: every row the same.
        metric: What the search optimises (``metrics.METRICS``; None: the task's default,
            accuracy or R²); a chosen one is recorded as ``preprocessing["target"]["metric"]``,
            where every scorer reads it.
        split: How rows are divided (``splits.Split``): ``random`` (stratified by class),
            ``time:COL``, ``group:COL`` or ``column:COL``; any but random is recorded as
            ``preprocessing["split"]``. A ``column`` split's column is never an input.
        column_types: ``COL=KIND`` overrides of how a column is read (``COLUMN_TYPES``): ``numeric``
            (unreadable cells count as missing), ``categorical`` (numbers as labels, e.g. a zip
            code) or ``date`` (year, month, day of the week and elapsed days, ``runtime.DATE_PARTS``);
            recorded as ``preprocessing["column_types"]``. Other columns are read as detected.
        ratio: Train/validation/test shares, ``"60/20/20"`` (the default when None); validation
            rows stop training and choose among models, test rows are held out for the final score.

    Returns:
        The encoded splits.

    Raises:
        DatasetError: The data cannot be used for this target and task.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"Unknown task '{task}'; use one of: {', '.join(TASKS)}.")
    chosen_split = Split.parse(split)
    val_fraction, test_fraction = parse_ratio(ratio)
    if class_weights not in CLASS_WEIGHTS:
        raise ValueError(f"Unknown class weights '{class_weights}'; use one of: {', '.join(CLASS_WEIGHTS)}.")
    image = read_image_meta(path)
    pixels: np.ndarray | None = None  # an image set's pixels, rows × values, uint8 as stored
    if image is not None and target == IMAGE_TARGET and not column_types and not ignore and chosen_split.column is None:
        # The pixels never become text cells: they stay the stored uint8 array (images.stored_arrays).
        x, y = stored_arrays(Path(path), image)
        frame, pixels = pd.DataFrame({IMAGE_TARGET: y.astype(object)}), x.reshape(len(x), -1)
        columns = [*image["columns"], IMAGE_TARGET]
    else:
        frame = read_table(path)
        columns = list(frame.columns)
    if target not in columns:
        raise unknown_column_error(target, columns)
    source_rows = len(frame)
    kept = np.array([not is_missing(v) for v in frame[target]], dtype=bool)
    frame = frame[kept].reset_index(drop=True)
    if pixels is not None:
        pixels = pixels[kept]
    raw_target = [v.strip() for v in frame[target]]
    task = task or detect_task(raw_target)
    if chosen_split.kind == "column" and chosen_split.column not in ignore:  # the user's split names are no input
        ignore = [*ignore, str(chosen_split.column)]
    if chosen_split.column == target:
        raise DatasetError(f"Column '{target}' is the target: it cannot also decide the split.")
    features = _used_columns(columns, target=target, ignore=ignore, image=image)
    kinds = parse_column_types(column_types, columns=columns, target=target)
    check_target(
        target,
        task=task,
        numeric=is_numeric(raw_target),
        classes=len(set(raw_target)),
        rows=len(raw_target),
        inputs_empty=pixels is None and all(all(is_missing(v) for v in frame[name]) for name in features),
    )
    if len(frame) < MIN_ROWS:
        raise DatasetError(f"The dataset has {len(frame)} rows with a target value; at least {MIN_ROWS} are needed.")
    try:
        metric_named(metric, task)
    except ValueError as error:
        raise DatasetError(str(error)) from None
    labels = sorted(set(raw_target), key=label_sort_key) if task == "classification" else []

    rng = np.random.default_rng(seed)
    strata = raw_target if task == "classification" else None
    train, val, test = split_rows(
        frame, chosen_split, rng=rng, val_fraction=val_fraction, test_fraction=test_fraction, strata=strata
    )
    # Column by column, as object arrays of the raw cells: never a dict per row (a million rows of
    # fifty columns would be fifty million dict entries).
    raw_test_rows = _raw_rows(frame, pixels, features, np.asarray(test))
    ignored_columns = [c for c in columns if c in set(ignore)]
    cells: dict[str, np.ndarray] = {}
    if pixels is None:
        cells = _numbers_first(frame, features, kinds, train)
        del frame  # the text of the columns read as numbers goes with it
    is_image = image is not None and target == IMAGE_TARGET
    prep: dict[str, Any] = {
        "version": 1 if is_image else 2,
        "task": task,
        "feature_columns": features,
        # Pixels keep plain standardisation (their range is fixed); table columns get robust scaling.
        "features": _fit_pixels(features, pixels[train])
        if pixels is not None
        else [_fit_feature(name, cells[name][train], robust=not is_image, kind=kinds.get(name)) for name in features],
        "target": _fit_target(target, task, labels, [raw_target[i] for i in train]),
    }
    if ignore:  # only then: the preprocessing of a search that ignores nothing stays as it was
        prep["ignored_columns"] = ignored_columns
    if kinds:
        prep["column_types"] = {name: kind for name, kind in kinds.items() if name in features}
    if chosen_split.kind != "random":
        prep["split"] = {"kind": chosen_split.kind, "column": chosen_split.column}
    if is_image:
        prep["image"] = image  # size, channels, resampling, pixel columns: what predict.py needs for images
    prep["n_features"] = sum(feature_width(f) for f in prep["features"])
    X_train, X_val, X_test = (
        PixelRows.fitted(pixels[part], prep["features"])
        if pixels is not None
        else encode_columns({name: column[part] for name, column in cells.items()}, prep, len(part))
        for part in (train, val, test)
    )
    if task == "regression":
        values = np.array([parse_number(v) for v in raw_target], dtype=np.float64)
        if log_target_helps(values[train], values[val], X_train, X_val, seed=seed):
            prep["target"] = _fit_target(target, task, labels, [raw_target[i] for i in train], log=True)
    y_all = _encode_target(raw_target, prep["target"], task)
    if class_weights == "balanced":
        if task != "classification":
            raise DatasetError("Class weights apply to classification; this target is a regression one.")
        counts = np.bincount(y_all[train], minlength=len(labels))
        present = int(np.count_nonzero(counts))
        prep["target"]["class_weights"] = [round(len(train) / (present * int(n)), 6) if n else 1.0 for n in counts]
    if metric is not None:
        prep["target"]["metric"] = metric
    return PreparedData(
        X_train=X_train,
        y_train=y_all[train],
        X_val=X_val,
        y_val=y_all[val],
        X_test=X_test,
        y_test=y_all[test],
        task=task,
        n_features=prep["n_features"],
        n_outputs=len(labels) if task == "classification" else 1,
        preprocessing=prep,
        target=target,
        feature_columns=tuple(features),
        source_rows=source_rows,
        image_shape=detect_image_shape([f["kind"] for f in prep["features"]]),
        raw_test_rows=raw_test_rows,
    )


def _numbers_first(frame: pd.DataFrame, features: list[str], kinds: dict[str, str], train) -> dict[str, np.ndarray]:
    """Each feature's cells, taken out of ``frame`` (its columns are removed as they are read): a
    column that reads as numbers on every row (or is declared numeric) becomes its float64 numbers
    (NaN where missing or unreadable, ``runtime.parse_numbers``) and its text is let go at once (a
    million rows of forty numeric columns are some 2 GB of Python strings); the rest stay text, each
    distinct cell held once (a category repeated on a million rows is one string, not a million)."""
    cells = {}
    for name in features:
        text = frame.pop(name).to_numpy(dtype=object)
        kind = kinds.get(name)
        if kind in (None, "numeric"):
            numbers, _, unreadable = read_numbers(text)
            if (kind == "numeric" or unreadable == 0) and not np.isnan(numbers[train]).all():
                cells[name] = numbers
                continue
        codes, distinct = pd.factorize(text, use_na_sentinel=False)
        cells[name] = np.asarray(distinct, dtype=object)[codes]
    return cells


def _raw_rows(frame: pd.DataFrame, pixels: np.ndarray | None, features: list[str], rows: np.ndarray) -> list[dict]:
    """The raw cells of the first of ``rows`` (CHECK_ROWS of a table, CHECK_IMAGES of an image set),
    as a CSV of them would read: what a bundle is checked on."""
    if pixels is None:
        return frame.iloc[rows[:CHECK_ROWS]].to_dict("records")
    kept = rows[:CHECK_IMAGES]
    cells = np.array(PIXEL_CELLS, dtype=object)[pixels[kept]]
    return [
        dict(zip(features, row, strict=True)) | {IMAGE_TARGET: frame[IMAGE_TARGET].iloc[i]}
        for row, i in zip(cells.tolist(), kept.tolist(), strict=True)
    ]


def _fit_pixels(features: list[str], train: np.ndarray) -> list[dict]:
    """Each pixel column's median, mean and standard deviation on the training rows, as
    ``_fit_feature`` fits a numeric column without robust scaling (the same numbers: one column at a
    time, in float64), from the uint8 array rather than its text."""
    return [_fit_numbers(name, train[:, j].astype(np.float64), robust=False) for j, name in enumerate(features)]


def _used_columns(columns: list[str], *, target: str, ignore: Sequence[str], image: dict | None) -> list[str]:
    """The input columns: every column but the target and the ignored ones.

    Raises:
        DatasetError: An ignored column is not in the data, is the target, or leaves no input; or
            columns of an image set are ignored.
    """
    ignored = set(ignore)
    if ignored and image is not None:
        raise DatasetError("Columns of an image set cannot be ignored: its inputs are the pixels.")
    for name in ignore:
        if name not in columns:
            raise unknown_column_error(name, columns)
    if target in ignored:
        raise DatasetError(f"Column '{target}' is the target: it cannot also be ignored.")
    features = [c for c in columns if c != target and c not in ignored]
    if not features:
        raise DatasetError("Every input column is ignored: keep at least one for the model to learn from.")
    return features


def check_target(name: str, *, task: str, numeric: bool, classes: int, rows: int, inputs_empty: bool) -> None:
    """Refuse a target column that no model can learn as asked. The web form calls it with the
    stored profile before a search is queued; ``prepare_data`` with the cells themselves.

    Args:
        name: The target column.
        task: ``"classification"`` or ``"regression"``.
        numeric: Every present value of the column is a number.
        classes: Distinct present values.
        rows: Rows where the column has a value.
        inputs_empty: Every other column is empty in every row.

    Raises:
        TargetError: With the field to change and a message that says how.
    """
    if rows == 0:
        raise TargetError(f"'{name}' is empty in every row; choose a column that has values.", field="target")
    if inputs_empty:
        raise TargetError(f"Every other column is empty, so there is nothing to predict '{name}' from.", field="target")
    if task == "regression":
        if not numeric:
            raise TargetError(
                f"Regression needs a numeric target, but '{name}' holds text; choose classification "
                "or clean the column.",
                field="task",
            )
        return
    if classes < 2:
        raise TargetError(f"'{name}' has only one distinct value; a model needs at least two classes.", field="target")
    if classes > MAX_CLASSES:
        raise TargetError(
            f"'{name}' has {classes} classes, too many (at most {MAX_CLASSES}); if it is a quantity, "
            "choose regression.",
            field="task" if numeric else "target",
        )
    if classes * 2 > rows:
        # Under two rows a class on average: no class can be both learned from and validated.
        raise TargetError(
            f"'{name}' has {classes} classes in {rows} rows, nearly every row its own class, so no class has "
            "examples to learn from; is it an ID? Choose another column"
            + (", or regression if it is a quantity." if numeric else "."),
            field="task" if numeric else "target",
        )


def parse_column_types(texts: Sequence[str], *, columns: list[str], target: str) -> dict[str, str]:
    """``["day=date", ...]`` as ``{"day": "date"}``.

    Raises:
        DatasetError: Not ``COL=KIND``, an unknown kind or column, or the target.
    """
    kinds: dict[str, str] = {}
    for text in texts:
        name, sep, kind = str(text).rpartition("=")
        name, kind = name.strip(), kind.strip().lower()
        if not sep or not name:
            raise DatasetError(f"Column type '{text}' is not COLUMN=KIND (e.g. day=date).")
        if kind not in COLUMN_TYPES:
            raise DatasetError(f"Unknown column type '{kind}' for '{name}'; use one of: {', '.join(COLUMN_TYPES)}.")
        if name not in columns:
            raise unknown_column_error(name, columns)
        if name == target:
            raise DatasetError(f"Column '{name}' is the target: its type follows the task.")
        kinds[name] = kind
    return kinds


def read_numbers(cells: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A column's numbers (NaN where missing or unreadable, ``runtime.parse_numbers``), how many
    cells are present (not missing) and how many of those are not finite numbers."""
    values = parse_numbers(cells)
    bad = np.flatnonzero(np.isnan(values))
    missing = sum(is_missing(cell) for cell in cells[bad].tolist())  # only cells that read no number
    return values, len(cells) - missing, len(bad) - missing


def _fit_date(name: str, train_cells) -> dict:
    train_cells = list(train_cells)
    parsed = [date_parts(c) for c in train_cells]
    known = [p for p in parsed if p is not None]
    if len(known) < 0.5 * max(1, sum(not is_missing(c) for c in train_cells)) or not known:
        example = next((c for c, p in zip(train_cells, parsed, strict=True) if p is None and not is_missing(c)), "")
        raise DatasetError(
            f"Column '{name}' does not hold dates (e.g. '{example}'): read it as numeric or categorical."
        )
    median = [float(v) for v in np.median(np.array(known), axis=0)]
    filled = np.array([p if p is not None else median for p in parsed], dtype=np.float64)
    std = filled.std(axis=0)
    days = int(median[3])
    return {
        "name": name,
        "kind": "date",
        "parts": list(DATE_PARTS),
        "median": median,
        "mean": [float(v) for v in filled.mean(axis=0)],
        "std": [float(v) if v > 0 else 1.0 for v in std],
        "example": (datetime.date(1970, 1, 1) + datetime.timedelta(days=days)).isoformat(),
    }


def _fit_numbers(name: str, numbers: np.ndarray, *, robust: bool) -> dict:
    """A numeric feature fitted on the training rows' numbers (NaN where missing or unreadable)."""
    median = float(np.median(numbers[~np.isnan(numbers)]))
    filled = np.where(np.isnan(numbers), median, numbers)
    std = float(filled.std())
    fitted = {"name": name, "kind": "numeric", "median": median, "mean": float(filled.mean()), "std": std or 1.0}
    return fitted | (robust_scaling(filled) if robust else {})


def _fit_feature(name: str, train_cells: np.ndarray, *, robust: bool = True, kind: str | None = None) -> dict:
    """A feature fitted on its training cells: raw text (an object array), or a column already read
    as numbers (a float array, ``_numbers_first``)."""
    if train_cells.dtype.kind == "f":
        return _fit_numbers(name, train_cells, robust=robust)
    train_cells = np.asarray(train_cells, dtype=object)
    if kind == "date":
        return _fit_date(name, train_cells)
    numbers, present, unreadable = read_numbers(train_cells)
    if kind == "numeric" and np.isnan(numbers).all():
        example = next((c for c in train_cells.tolist() if not is_missing(c)), "")
        raise DatasetError(f"Column '{name}' holds no numbers (e.g. '{example}'): it cannot be read as numeric.")
    if kind == "numeric" or (kind is None and present > 0 and unreadable == 0):
        return _fit_numbers(name, numbers, robust=robust)
    counts: Counter[str] = Counter()
    for cell, rows in Counter(train_cells.tolist()).items():  # category_of once per distinct cell
        if (category := category_of(cell)) is not None:
            counts[category] += rows
    # Most frequent first; ties alphabetically so the encoding does not depend on row order.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_CATEGORIES]
    return {"name": name, "kind": "categorical", "categories": [c for c, _ in ranked]}


def robust_scaling(values: np.ndarray) -> dict:
    """RealMLP's robust scaling (NeurIPS 2024) of one numeric column: centred on the median and
    divided by the interquartile range in standard-deviation units (half the range when the
    quartiles coincide, as in a mostly-zero column), then smoothly clipped at ``SMOOTH_CLIP``
    standard units by ``runtime.encode_rows``."""
    q25, median, q75 = (float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))
    spread = (q75 - q25) / IQR_PER_STD
    if spread <= 0:
        spread = (float(values.max()) - float(values.min())) / 2
    return {"center": median, "scale": spread if spread > 0 else 1.0, "clip": SMOOTH_CLIP}


def log_target_helps(train: np.ndarray, val: np.ndarray, X_train: Rows, X_val: Rows, *, seed: int = 0) -> bool:
    """Whether a regression target is better learnt as its logarithm. Only a positive, right-skewed
    target (skewness above ``LOG_TARGET_MIN_SKEW``, less skewed as a logarithm: prices, incomes)
    is a candidate; it is learnt as a logarithm when a quick gradient-boosting model fitted that
    way scores a higher R² *in the target's own units* on the validation rows than one fitted on
    the values as they are. A price model then cannot predict a negative price, and a few huge
    values no longer dominate its loss; where the logarithm would only trade accuracy for it (a
    wage), the values stay as they are."""
    if len(train) < 3 or len(val) < 3 or float(train.min()) <= 0:
        return False

    def skewness(x: np.ndarray) -> float:
        std = float(x.std())
        return float(np.mean(((x - x.mean()) / std) ** 3)) if std > 0 else 0.0

    raw = skewness(train)
    if not (raw > LOG_TARGET_MIN_SKEW and abs(skewness(np.log(train))) < raw):
        return False
    from sklearn.ensemble import HistGradientBoostingRegressor  # only for a candidate target

    rows = np.random.default_rng(seed).permutation(len(train))[:LOG_CHECK_MAX_ROWS]
    scores = []
    for log in (False, True):
        model = HistGradientBoostingRegressor(max_iter=100, random_state=seed)
        model.fit(X_train[rows], np.log(train[rows]) if log else train[rows])
        predicted = model.predict(X_val)
        predicted = np.exp(np.clip(predicted, -700, 700)) if log else predicted
        scores.append(float(np.sum((val - predicted) ** 2)))
    return scores[1] < scores[0]


def _fit_target(name: str, task: str, labels: list[str], train_values: list[str], *, log: bool = False) -> dict:
    if task == "classification":
        return {"name": name, "labels": labels}
    values = np.array([parse_number(v) for v in train_values], dtype=np.float64)
    transform = "log" if log else None
    learnt = np.log(values) if transform else values
    std = float(learnt.std())
    return {"name": name, "mean": float(learnt.mean()), "std": std if std > 0 else 1.0} | (
        {"transform": transform, "floor": float(values.min())} if transform else {}
    )


def _encode_target(raw_target: list[str], target: dict, task: str) -> np.ndarray:
    if task == "classification":
        index = {label: i for i, label in enumerate(target["labels"])}
        return np.array([index[v] for v in raw_target], dtype=np.int64)
    values = np.array([parse_number(v) for v in raw_target], dtype=np.float64)
    if target.get("transform") == "log":  # a validation or test value at or below 0 counts as the training minimum
        values = np.log(np.maximum(values, target["floor"]))
    return ((values - target["mean"]) / target["std"]).astype(np.float32)
