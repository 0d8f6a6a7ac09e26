"""Data files the tests and the benchmarks build from datasets that ship with sklearn."""

from __future__ import annotations

from pathlib import Path


def write_sklearn_csv(loader, path: Path, target: str = "target") -> Path:
    """One of sklearn's bundled datasets (``load_iris``...) as a CSV, its target column named ``target``."""
    frame = loader(as_frame=True).frame.rename(columns={"target": target})
    frame.to_csv(path, index=False)
    return path


def write_digit_pngs(folder: Path, *, per_class: int | None = None) -> Path:
    """sklearn's 8×8 digits as grey PNG files in one folder per class (``folder/7/0042.png``); the
    first ``per_class`` images of each class, or all 1,797."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    kept: dict[int, int] = {}
    for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        if per_class is not None and kept.get(int(label), 0) >= per_class:
            continue
        kept[int(label)] = kept.get(int(label), 0) + 1
        path = folder / str(label) / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), mode="L").save(path)
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip every file under ``folder`` with paths relative to it (class folders at the top)."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(folder).as_posix())
    return archive
