"""Training rows read a batch at a time: an image set stays its uint8 pixels (``PixelRows``) until a
batch is drawn, and ``Batches`` hands a trainer each batch as a tensor.

A 50,000-image 3×32×32 set is 150 MB as uint8 and 614 MB as the float32 matrix it used to become;
``PixelRows`` makes only the rows asked for float, with the very numbers ``prepare_data`` fitted
(``(x - mean) / std`` per pixel column in float64, stored float32), so a model trained from it is
the model trained from the matrix.
"""

from __future__ import annotations

import numpy as np
import torch

CHUNK_ROWS = 4096  # rows made float at a time when many are asked for: the float64 work stays ~100 MB


class PixelRows:
    """Rows × pixel values, stored uint8, read as float32 standardised features.

    It behaves as the read-only float32 matrix it stands for where the engine uses one: ``len``,
    ``shape``, ``dtype``, indexing by rows (an int, a slice, an index array or mask) gives a float32
    array, and ``np.asarray`` (or anything that takes an array) makes the whole matrix.

    Args:
        raw: uint8 array, rows × pixel values (C×H×W order).
        mean: Each pixel column's training mean.
        std: Each pixel column's training standard deviation.
    """

    __slots__ = ("raw", "mean", "std")

    def __init__(self, raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        if raw.dtype != np.uint8 or raw.ndim != 2 or mean.shape != (raw.shape[1],) or std.shape != mean.shape:
            raise ValueError("PixelRows takes uint8 rows × values and one mean and std per value.")
        self.raw = raw
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    @classmethod
    def fitted(cls, raw: np.ndarray, features: list[dict]) -> PixelRows:
        """Rows standardised by ``prepare_data``'s fitted pixel features (their ``mean`` and ``std``)."""
        mean = np.array([f["mean"] for f in features], dtype=np.float64)
        std = np.array([f["std"] for f in features], dtype=np.float64)
        return cls(raw, mean, std)

    @property
    def shape(self) -> tuple[int, int]:
        return self.raw.shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def nbytes(self) -> int:
        """What it holds (the uint8 pixels), not the float32 matrix it reads as."""
        return self.raw.nbytes

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):  # a column or a cell: rare (not on a training path), made whole
            return np.asarray(self)[key]
        if isinstance(key, torch.Tensor):
            key = key.numpy()
        return self._standardise(self.raw[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self._standardise(self.raw)
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def take(self, rows) -> PixelRows:
        """These rows, still uint8: a fold or a subset that stays as small as the pixels."""
        return PixelRows(self.raw[rows], self.mean, self.std)

    def _standardise(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim == 1:
            return ((pixels.astype(np.float64) - self.mean) / self.std).astype(np.float32)
        out = np.empty(pixels.shape, dtype=np.float32)
        for start in range(0, len(pixels), CHUNK_ROWS):
            out[start : start + CHUNK_ROWS] = (
                pixels[start : start + CHUNK_ROWS].astype(np.float64) - self.mean
            ) / self.std
        return out


Rows = np.ndarray | PixelRows  # a split's features: a float32 matrix, or an image set's pixels


def concat_rows(parts) -> Rows:
    """Rows of several splits in one: ``PixelRows`` of the same fit stay uint8; else ``np.concatenate``."""
    first = parts[0]
    if isinstance(first, PixelRows) and all(
        isinstance(p, PixelRows) and _same(p.mean, first.mean) and _same(p.std, first.std) for p in parts
    ):
        return PixelRows(np.concatenate([p.raw for p in parts]), first.mean, first.std)
    return np.concatenate([np.asarray(p) for p in parts])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or np.array_equal(a, b)


def take_rows(X: Rows, rows) -> Rows:
    """``X[rows]``, kept uint8 when ``X`` is ``PixelRows``."""
    return X.take(rows) if isinstance(X, PixelRows) else X[rows]


class Batches:
    """A trainer's rows, served a batch at a time as CPU tensors (augmented there, then moved to
    the training device by the trainer).

    A float32 matrix is wrapped once as a tensor and indexed, as trainers always did (the same
    values, the same order); ``PixelRows`` make each batch float on the fly, so no float copy of
    the whole set is ever held.
    """

    def __init__(self, X: Rows) -> None:
        self.rows = X
        self.tensor = torch.from_numpy(X) if isinstance(X, np.ndarray) else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        if self.tensor is not None:
            return self.tensor[idx]
        return torch.from_numpy(self.rows[idx.numpy()])

    def numpy(self) -> np.ndarray:
        """Every row as one float32 array (boosted trees fit on the whole matrix)."""
        return self.tensor.numpy() if self.tensor is not None else np.asarray(self.rows)
