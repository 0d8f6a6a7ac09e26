"""Engine test data: more of sklearn's bundled datasets and a small hand-made CSV with a categorical
column and missing cells. Written to temporary files; nothing is downloaded."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nas_engine import prepare_data
from nas_engine.images import convert_image_upload
from tests.data_files import write_sklearn_csv

# breast_cancer_csv and diabetes_csv come from tests/conftest.py.


@pytest.fixture(scope="session")
def iris_csv(tmp_path_factory) -> Path:
    from sklearn.datasets import load_iris

    return write_sklearn_csv(load_iris, tmp_path_factory.mktemp("data") / "iris.csv", "species")


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def mixed_csv(tmp_path_factory) -> Path:
    """200 rows: numbers with gaps, a colour category (with blanks), and a yes/no target."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(200):
        size = rng.normal(10, 3)
        colour = ["red", "green", "blue", ""][i % 4]
        weight = "" if i % 9 == 0 else f"{rng.normal(50, 10):.2f}"
        label = "yes" if size + (colour == "red") * 2 > 10.5 else "no"
        rows.append([f"{size:.3f}", colour, weight, "NA" if i % 13 == 0 else str(i % 5), label])
    return write_csv(tmp_path_factory.mktemp("data") / "mixed.csv", ["size", "colour", "weight", "code", "label"], rows)


@pytest.fixture(scope="session")
def mixed_data(mixed_csv):
    return prepare_data(mixed_csv, target="label", seed=0)


@pytest.fixture(scope="session")
def cancer_data(breast_cancer_csv):
    return prepare_data(breast_cancer_csv, target="diagnosis", seed=0)


@pytest.fixture(scope="session")
def small_image_data(tmp_path_factory):
    """A prepared image set of 240 colour 8×8 images in two classes (one darker at the top): its
    splits are ``batches.PixelRows``."""
    folder = tmp_path_factory.mktemp("small-images")
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (240, 8, 8, 3), dtype=np.uint8)
    y = rng.choice(["ant", "bee"], 240)
    x[y == "bee", :4] //= 3
    np.savez(folder / "upload.npz", x=x, y=y)
    convert_image_upload(folder / "upload.npz", folder / "set.npz", filename="upload.npz")
    return prepare_data(folder / "set.npz", target="label", seed=2)
