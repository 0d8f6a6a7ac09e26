"""Built-in sample datasets, made from data that ships inside scikit-learn, so a new account can start
a search with one click, before it has a file of its own. Each becomes the user's own dataset, made
exactly as an upload of the same file would be (checked, profiled, converted)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from webapp.datasets import services
from webapp.datasets.models import Dataset


@dataclass(frozen=True)
class Sample:
    key: str
    name: str
    filename: str
    description: str
    target: str


SAMPLES = {
    sample.key: sample
    for sample in (
        Sample(
            "breast-cancer", "Breast cancer (sample)", "breast_cancer.csv",
            "A table: 569 tumours, 30 measurements each; predict whether one is malignant or benign.", "diagnosis",
        ),
        Sample(
            "digits", "Handwritten digits (sample)", "digits.npz",
            "Images: 1,797 handwritten digits of 8×8 grey pixels, in 10 classes; predict the digit.", "label",
        ),
    )
}  # fmt: skip


def _write(sample: Sample, path: Path) -> None:
    from sklearn import datasets

    if sample.key == "breast-cancer":
        data = datasets.load_breast_cancer(as_frame=True)
        frame = data.frame.drop(columns=["target"])
        frame["diagnosis"] = [str(data.target_names[i]) for i in data.target]
        frame.to_csv(path, index=False)
    else:
        digits = datasets.load_digits()
        pixels = np.round(digits.images * 255 / 16).astype(np.uint8)
        np.savez(path, x=pixels, y=digits.target.astype(np.int64))


def sample_create(*, owner, key: str) -> Dataset:
    """The sample ``key`` as a new dataset of ``owner`` (quotas are not counted: it is small).

    Raises:
        KeyError: No such sample.
    """
    sample = SAMPLES[key]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / sample.filename
        _write(sample, path)
        return services.dataset_create_from_file(owner=owner, path=path, name=sample.name)
