"""Convert an uploaded image archive (one folder per class) or an .npz of arrays, once, into a stored
image set: an .npz of uint8 pixels that the tabular pipeline reads as pixel columns plus a label.
The upload itself is read within its limits by ``image_archives``; this module groups its images by
class, decodes them, and writes and reads the image-set format."""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nas_engine import runtime
from nas_engine.errors import DatasetError
from nas_engine.image_archives import (
    DEFAULT_ARCHIVE_LIMITS,
    ArchiveLimits,
    Entry,
    check_npz_archive,
    ignored,
    is_image_name,
    read_archive,
)

TARGET = "label"
FORMAT = "nas-image-set"
VERSION = 1
RESAMPLE = "bilinear"
# Images are stored at most 32×32 by default (up to 64 when asked) where searches train on a CPU: a
# larger side only slows every trial, and a 64×64 image costs four times a 32×32 one. Where the
# workers train on a GPU (``gpu=True``), the default goes up to 64 and a chosen side up to 96.
MIN_SIDE, MAX_SIDE, MAX_CHOSEN_SIDE = 8, 32, 64
GPU_MAX_SIDE, GPU_MAX_CHOSEN_SIDE = 64, 96


def side_limits(*, gpu: bool) -> tuple[int, int]:
    """The largest side chosen by default (the images' median) and the largest a user may ask for."""
    return (GPU_MAX_SIDE, GPU_MAX_CHOSEN_SIDE) if gpu else (MAX_SIDE, MAX_CHOSEN_SIDE)


MAX_SKIPPED_LISTED = 50
SAMPLES_PER_CLASS = 6
MAX_META_BYTES = 1 << 20
_UPLOAD_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".npz")


@dataclass(frozen=True)
class ImageSetProfile:
    """What a converted upload holds.

    ``classes`` pairs each class name with its images kept, sorted by name (numbers by value);
    ``height``/``width``/``channels`` are the stored size (square) and 1 (grey) or 3 (RGB);
    ``source_sizes`` gives the ``[width, height]`` min, median and max of the decoded originals;
    ``skipped`` lists up to 50 ``(member name, reason)`` of files that could not be decoded;
    ``samples`` maps each class to up to 6 ``data:image/png;base64,...`` URLs at the stored size.
    """

    classes: tuple[tuple[str, int], ...]
    images: int
    height: int
    width: int
    channels: int
    source_sizes: dict
    skipped: tuple[tuple[str, str], ...] = ()
    skipped_count: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "classes": [list(pair) for pair in self.classes],
            "images": self.images,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "source_sizes": {key: list(value) for key, value in self.source_sizes.items()},
            "skipped": [list(pair) for pair in self.skipped],
            "skipped_count": self.skipped_count,
            "samples": {name: list(urls) for name, urls in self.samples.items()},
        }


@dataclass(frozen=True)
class _Decoded:
    label: str
    name: str
    data: bytes | None  # the file's bytes (archives) ...
    array: np.ndarray | None  # ... or its H×W×C uint8 pixels (.npz)
    size: tuple[int, int]  # (width, height) of the original


def is_image_upload(filename: str) -> bool:
    """Return True when an upload's name says it holds images (.zip, .tar.gz, .tgz or .npz)."""
    return filename.lower().endswith(_UPLOAD_SUFFIXES)


# --- layout: one folder per class ----------------------------------------------------------------


def _classes(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Group the image files by class folder, descending into a single parent folder."""
    visible = [e for e in entries if e.parts and not ignored(e.parts)]
    images = [e for e in visible if not e.is_dir and is_image_name(e.parts[-1])]
    if not images:
        raise DatasetError(
            "The archive holds no PNG or JPEG images. Put the images in one folder per class (for example "
            "cats/001.png and dogs/001.png), pack the folders and upload the file."
        )
    depth = 0  # people often zip the folder that holds the class folders
    while all(len(e.parts) >= depth + 3 for e in images) and len({e.parts[depth] for e in images}) == 1:
        depth += 1
    prefix = images[0].parts[:depth]
    loose = [e for e in images if len(e.parts) == depth + 1]
    if loose:
        raise DatasetError(
            f"'{loose[0].name}' sits at the top of the archive, outside any class folder. Put every image in a "
            "folder named after its class (for example cats/001.png) and upload again."
        )
    folders = {
        e.parts[depth].strip()
        for e in visible
        if e.parts[:depth] == prefix and (len(e.parts) > depth + 1 or (e.is_dir and len(e.parts) == depth + 1))
    }
    grouped: dict[str, list[Entry]] = {name: [] for name in folders}
    for entry in images:
        grouped[entry.parts[depth].strip()].append(entry)
    for name, members in sorted(grouped.items()):
        _check_label(name, "class folder")
        if not members:
            raise DatasetError(
                f"Class folder '{name}' holds no images (PNG or JPEG). Add images to it or remove it, then "
                "upload again."
            )
    if len(grouped) < 2:
        raise DatasetError(
            f"The archive has only one class folder ('{next(iter(grouped))}'); a model needs at least two. Put "
            "each class's images in a folder of its own."
        )
    return {name: sorted(members, key=lambda e: e.name) for name, members in grouped.items()}


def _check_label(label: str, what: str) -> None:
    if runtime.is_missing(label):
        shown = f"'{label}'" if label else "with an empty name"
        raise DatasetError(
            f"The {what} {shown} reads as a missing value, so its images would be dropped; rename it (for "
            "example 'unknown')."
        )


# --- decoding ------------------------------------------------------------------------------------


def _decode_archive(
    grouped: dict[str, list[Entry]], limits: ArchiveLimits
) -> tuple[list[_Decoded], list[tuple[str, str]], bool]:
    """Open every image once for its size and colour; returns (kept, skipped, all grey)."""
    kept: list[_Decoded] = []
    skipped: list[tuple[str, str]] = []
    grey = True
    for label in sorted(grouped, key=runtime.label_sort_key):
        for entry in grouped[label]:
            assert entry.data is not None  # read for every image file
            try:
                image = runtime.open_image(entry.data, max_side=limits.max_side)
                grey = grey and runtime.is_grey(image)
            except ValueError as exc:
                skipped.append((entry.name, str(exc)))
                continue
            kept.append(_Decoded(label, entry.name, entry.data, None, image.size))
    if not kept:
        example, reason = skipped[0]
        raise DatasetError(
            f"None of the {len(skipped)} images could be read (for example '{example}': {reason}). Check that the "
            "files are real PNG or JPEG images."
        )
    empty = sorted(set(grouped) - {item.label for item in kept})
    if empty:
        raise DatasetError(
            f"No image in class folder '{empty[0]}' could be read as PNG or JPEG; replace its files or remove "
            "the folder."
        )
    return kept, skipped, grey


def _npz_images(path: Path, filename: str, limits: ArchiveLimits) -> tuple[list[_Decoded], bool]:
    check_npz_archive(path, filename, limits)
    try:
        x, y = runtime.load_npz_images(path, name=filename)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if y is None:
        raise DatasetError(
            f"'{filename}' has no array named 'y'; save one label per image as y (np.savez(path, x=..., y=...))."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(
            f"y has shape {'×'.join(map(str, y.shape))}; it needs one label per image (a list as long as x)."
        )
    if len(y) != len(x):
        raise DatasetError(
            f"x holds {len(x):,} images but y holds {len(y):,} labels; they must match: one label per image."
        )
    if len(x) > limits.max_files:
        raise DatasetError(
            f"The file holds {len(x):,} images; this server accepts at most {limits.max_files:,}. Upload a sample."
        )
    labels = [_label_text(value) for value in y.tolist()]
    for label in sorted(set(labels)):
        _check_label(label, "label")
    grey = x.shape[-1] == 1 or bool((x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all())
    size = (int(x.shape[2]), int(x.shape[1]))
    order = sorted(range(len(x)), key=lambda i: runtime.label_sort_key(labels[i]))  # stable: rows keep order
    decoded = [_Decoded(labels[i], str(i), None, x[i], size) for i in order]
    if len({item.label for item in decoded}) < 2:
        raise DatasetError(f"Every image in y has the label '{labels[0]}'; a model needs at least two classes.")
    return decoded, grey


def _label_text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(int(value)) if isinstance(value, (bool, int)) else str(value).strip()


def _side(items: list[_Decoded], size: int | None, *, gpu: bool) -> int:
    largest, largest_chosen = side_limits(gpu=gpu)
    if size is not None:
        if not isinstance(size, int) or not MIN_SIDE <= size <= largest_chosen:
            why = ""
            if not gpu and isinstance(size, int) and largest_chosen < size <= GPU_MAX_CHOSEN_SIDE:
                why = (
                    f" Sides up to {GPU_MAX_CHOSEN_SIDE} need workers that train on a GPU; this server's train on "
                    "the CPU, where a bigger image only slows every model."
                )
            raise DatasetError(
                f"The image size must be between {MIN_SIDE} and {largest_chosen} pixels; got {size}.{why}"
            )
        return size
    median = float(np.median([max(item.size) for item in items]))
    return int(min(max(round(median), MIN_SIDE), largest))


def _source_sizes(items: list[_Decoded]) -> dict:
    sizes = np.array([item.size for item in items])
    return {
        "min": sizes.min(axis=0).tolist(),
        "median": np.rint(np.median(sizes, axis=0)).astype(int).tolist(),
        "max": sizes.max(axis=0).tolist(),
    }


def png_data_url(pixels: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of stored pixels (C×H×W uint8)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def png_bytes(pixels: np.ndarray) -> bytes:
    """Stored pixels (C×H×W uint8) as a PNG file; decoding it gives the same pixels back."""
    from PIL import Image

    array = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_image_set(destination: Path, x: np.ndarray, labels: list[str], meta: dict) -> None:
    """Write the .npz under a temporary name in the same folder, then rename it into place."""
    handle = tempfile.NamedTemporaryFile(dir=destination.parent, prefix=f".{destination.name}.", delete=False)
    try:
        with handle:
            np.savez_compressed(
                handle,
                x=x,
                y=np.array(labels, dtype=str),
                meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            )
        os.replace(handle.name, destination)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def convert_image_upload(
    source: str | Path,
    destination: str | Path,
    *,
    filename: str,
    limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
    size: int | None = None,
    gpu: bool = False,
) -> ImageSetProfile:
    """Convert an uploaded image archive or .npz into a stored image set.

    An archive (.zip, .tar.gz, .tgz) holds one folder per class of PNG/JPEG files; an .npz holds
    ``x`` (N×H×W or N×H×W×C images, uint8 or decimals 0..1) and ``y`` (N labels). Images are
    stored grey when none has colour, else RGB, resized (bilinear) to a square side.

    Args:
        source: The uploaded file.
        destination: Where to write the image set (.npz); written whole or not at all.
        filename: The upload's original name, which tells its format.
        limits: Bounds on the archive's members, sizes and compression.
        size: The stored side in pixels; by default the median side of the images, within 8..32
            (8..64 with ``gpu``). A chosen side may be up to 64 (96 with ``gpu``).
        gpu: The workers that will train on it have a GPU (``side_limits``).

    Returns:
        What the image set holds.

    Raises:
        DatasetError: The upload cannot be used; the message says why and what to do. No file is
            left at ``destination``.
    """
    source, destination = Path(source), Path(destination)
    name = filename.lower()
    skipped: list[tuple[str, str]] = []
    if name.endswith(".npz"):
        items, grey = _npz_images(source, filename, limits)
    elif is_image_upload(name):
        items, skipped, grey = _decode_archive(_classes(read_archive(source, filename, limits)), limits)
    else:
        raise DatasetError(f"'{filename}' is not an image upload; upload a .zip, .tar.gz, .tgz or .npz file.")
    side, channels = _side(items, size, gpu=gpu), 1 if grey else 3
    classes = sorted({item.label for item in items}, key=runtime.label_sort_key)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "height": side,
        "width": side,
        "channels": channels,
        "resample": RESAMPLE,
        "columns": [f"p{i}" for i in range(channels * side * side)],
        "classes": classes,
    }
    x = np.empty((len(items), channels, side, side), dtype=np.uint8)
    for i, item in enumerate(items):
        # The very functions a bundle's predict.py runs, so it reproduces these pixels exactly.
        if item.data is not None:
            x[i] = runtime.decode_image(item.data, meta)
        else:
            assert item.array is not None
            x[i] = runtime.array_pixels(item.array, meta)
    labels = [item.label for item in items]
    samples: dict[str, list[str]] = {label: [] for label in classes}
    for pixels, label in zip(x, labels, strict=True):
        if len(samples[label]) < SAMPLES_PER_CLASS:
            samples[label].append(png_data_url(pixels))
    _write_image_set(destination, x, labels, meta)
    return ImageSetProfile(
        classes=tuple((label, labels.count(label)) for label in classes),
        images=len(items),
        height=side,
        width=side,
        channels=channels,
        source_sizes=_source_sizes(items),
        skipped=tuple(skipped[:MAX_SKIPPED_LISTED]),
        skipped_count=len(skipped),
        samples=samples,
    )


# --- reading a stored image set ------------------------------------------------------------------


def read_image_meta(path: str | Path) -> dict | None:
    """Return the ``"image"`` meta stored in an image set, or None when ``path`` is not one.

    An image set is always named ``.npz``: a file named otherwise (an upload called ``data.csv``) is
    never read as one, so it cannot skip the archive limits an image upload is checked against.
    """
    if Path(path).suffix.lower() != ".npz":
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                return None
        with zipfile.ZipFile(path) as container:
            if container.getinfo("meta.npy").file_size > MAX_META_BYTES:
                return None
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def stored_arrays(path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    damaged = DatasetError(f"The image set '{path.name}' is damaged (its pixels do not match its description).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise damaged from None
    shape = (meta["channels"], meta["height"], meta["width"])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != shape or y.shape != (len(x),) or y.dtype.kind != "U":
        raise damaged
    return x, y


def read_image_table(path: str | Path, *, max_rows: int | None = None) -> pd.DataFrame:
    """Read an image set as the table of raw text cells a CSV of it would give.

    Returns:
        The pixel columns (``p0``, ``p1``, ... in C×H×W order, cells ``str(int)``) then ``label``.

    Raises:
        DatasetError: ``path`` is not an intact image set.
    """
    path = Path(path)
    meta = read_image_meta(path)
    if meta is None:
        raise DatasetError(f"'{path.name}' is not an image set.")
    x, y = stored_arrays(path, meta)
    if max_rows is not None:
        x, y = x[:max_rows], y[:max_rows]
    cells = np.array(runtime.PIXEL_CELLS, dtype=object)[x.reshape(len(x), -1)]
    table = np.concatenate([cells, y.astype(object).reshape(-1, 1)], axis=1)
    return pd.DataFrame(table, columns=[*meta["columns"], TARGET], dtype=str)
