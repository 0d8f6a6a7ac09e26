"""Image uploads: archives of class folders and .npz arrays become stored image sets that the tabular
pipeline reads; unsafe archives are refused whole; a bundle's predict.py reproduces the app's pixels."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import stat
import struct
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas_engine import (
    ArchiveLimits,
    DatasetError,
    SearchConfig,
    convert_image_upload,
    export_bundle,
    is_image_upload,
    load_final_model,
    prepare_data,
    profile_csv,
    read_image_meta,
    run_search,
)
from nas_engine.cli import main
from nas_engine.evaluator import predict_raw
from nas_engine.runtime import decode_outputs, encode_rows, image_rows, predict_images


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes | None]) -> Path:
    """A zip with the given members; None makes a folder entry."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name if data is not None else name.rstrip("/") + "/")
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, b"" if data is None else data)
    return path


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return np.rint(data.images * 255 / 16).astype(np.uint8), data.target


def _digit_members(digits, *, per_class: int | None = None, prefix: str = "") -> dict[str, bytes | None]:
    images, target = digits
    members: dict[str, bytes | None] = {}
    for label in range(10):
        for index in np.flatnonzero(target == label)[:per_class]:
            members[f"{prefix}{label}/{index:04d}.png"] = _png(images[index])
    return members


@pytest.fixture(scope="module")
def digits_zip(digits, tmp_path_factory) -> Path:
    return _zip(tmp_path_factory.mktemp("upload") / "digits.zip", _digit_members(digits))


@pytest.fixture(scope="module")
def digits_set(digits_zip, tmp_path_factory):
    destination = tmp_path_factory.mktemp("stored") / "digits.npz"
    profile = convert_image_upload(digits_zip, destination, filename="Digits.ZIP")
    return destination, profile


def _expected_pixels(digits, per_class: int | None = None) -> np.ndarray:
    images, target = digits
    order = [i for label in range(10) for i in np.flatnonzero(target == label)[:per_class]]
    return images[order][:, np.newaxis]


def test_upload_names_tell_image_uploads_apart():
    assert all(map(is_image_upload, ["a.zip", "b.TAR.GZ", "c.tgz", "d.NPZ"]))
    assert not any(map(is_image_upload, ["a.csv", "b.tar", "c.png", "zip"]))


def test_a_zip_of_class_folders_becomes_an_8x8_grey_image_set(digits, digits_set):
    destination, profile = digits_set
    counts = np.bincount(digits[1])
    assert profile.classes == tuple((str(label), int(counts[label])) for label in range(10))
    assert profile.images == 1797 and (profile.height, profile.width, profile.channels) == (8, 8, 1)
    assert profile.source_sizes == {"min": [8, 8], "median": [8, 8], "max": [8, 8]}
    assert profile.skipped == () and profile.skipped_count == 0
    assert sorted(profile.samples) == [str(label) for label in range(10)]
    assert all(len(urls) == 6 and urls[0].startswith("data:image/png;base64,") for urls in profile.samples.values())
    json.dumps(profile.to_dict())
    meta = read_image_meta(destination)
    assert meta is not None and meta["format"] == "nas-image-set" and meta["version"] == 1
    assert (meta["height"], meta["width"], meta["channels"], meta["resample"]) == (8, 8, 1, "bilinear")
    assert meta["columns"] == [f"p{i}" for i in range(64)] and meta["classes"] == [str(c) for c in range(10)]
    with np.load(destination) as stored:
        assert stored["x"].dtype == np.uint8 and np.array_equal(stored["x"], _expected_pixels(digits))
        assert stored["y"].tolist() == [str(c) for c in sorted(digits[1])]


def test_the_image_set_reads_through_profile_csv_and_prepare_data(digits_set):
    destination, _ = digits_set
    profile = profile_csv(destination)
    assert profile.rows == 1797 and [c.name for c in profile.columns][-2:] == ["p63", "label"]
    assert profile.warnings == () and profile.leakage == () and profile.leakage_checked is False
    assert len(profile.preview) <= 5
    assert profile.column("label").suggested_task == "classification"
    data = prepare_data(destination, target="label", seed=0)
    assert data.image_shape == (1, 8, 8) and data.n_features == 64 and data.n_outputs == 10
    assert data.preprocessing["image"] == read_image_meta(destination)
    assert data.preprocessing["target"]["labels"] == [str(c) for c in range(10)]
    assert {f["kind"] for f in data.preprocessing["features"]} == {"numeric"}
    assert read_image_meta(Path(__file__)) is None


def test_a_single_parent_folder_is_descended_into(digits, digits_set, tmp_path):
    upload = _zip(tmp_path / "up.zip", {"digits/": None, **_digit_members(digits, per_class=5, prefix="digits/")})
    profile = convert_image_upload(upload, tmp_path / "set.npz", filename="up.zip")
    assert [name for name, _ in profile.classes] == [str(c) for c in range(10)] and profile.images == 50
    with np.load(tmp_path / "set.npz") as stored:
        assert np.array_equal(stored["x"], _expected_pixels(digits, per_class=5))


def test_colour_images_give_three_channels_in_channel_major_order(tmp_path):
    red = np.zeros((10, 14, 3), dtype=np.uint8)
    red[..., 0] = 255
    grey = np.full((10, 14), 128, dtype=np.uint8)
    members = {f"red/{i}.png": _png(red) for i in range(3)} | {f"grey/{i}.jpg": _png(grey) for i in range(3)}
    members |= {"__MACOSX/red/._0.png": b"junk", "red/.DS_Store": b"junk", "Thumbs.db": b"x", "README.txt": b"hi"}
    profile = convert_image_upload(_zip(tmp_path / "c.zip", members), tmp_path / "c.npz", filename="c.zip")
    assert profile.channels == 3 and profile.height == profile.width == 14
    assert profile.classes == (("grey", 3), ("red", 3)) and profile.source_sizes["max"] == [14, 10]
    with np.load(tmp_path / "c.npz") as stored:
        x = stored["x"]
    assert x.shape == (6, 3, 14, 14)
    assert (x[3:, 0] == 255).all() and (x[3:, 1:] == 0).all() and (x[:3] == 128).all()


def test_a_tar_gz_upload_works(digits, tmp_path):
    members = {name: data for name, data in _digit_members(digits, per_class=4).items() if data is not None}
    profile = convert_image_upload(_tar(tmp_path / "d.tgz", members), tmp_path / "d.npz", filename="d.tar.gz")
    assert profile.images == 40 and profile.channels == 1
    with np.load(tmp_path / "d.npz") as stored:
        assert np.array_equal(stored["x"], _expected_pixels(digits, per_class=4))


def test_npz_uploads_of_grey_and_colour_arrays_work(digits, tmp_path):
    images, target = digits
    np.savez(tmp_path / "grey.npz", x=images[:100], y=target[:100].astype(np.float64))
    profile = convert_image_upload(tmp_path / "grey.npz", tmp_path / "g.npz", filename="grey.npz")
    assert (profile.images, profile.height, profile.channels) == (100, 8, 1)
    with np.load(tmp_path / "g.npz") as stored:
        order = np.argsort(target[:100], kind="stable")
        assert np.array_equal(stored["x"][:, 0], images[:100][order])
        assert stored["y"].tolist() == [str(v) for v in target[:100][order]]
    colour = np.random.default_rng(0).integers(0, 256, (12, 12, 20, 3)).astype(np.uint8)
    labels = np.array(["cat", "dog"] * 6)
    np.savez(tmp_path / "colour.npz", x=colour / 255.0, y=labels)
    profile = convert_image_upload(tmp_path / "colour.npz", tmp_path / "c.npz", filename="colour.npz")
    assert (profile.height, profile.width, profile.channels) == (20, 20, 3)  # not square: resized to 20×20
    assert profile.classes == (("cat", 6), ("dog", 6)) and profile.source_sizes["min"] == [20, 12]


def test_undecodable_images_are_skipped_and_listed(digits, tmp_path):
    members = _digit_members(digits, per_class=3)
    good = members["3/" + next(n.split("/")[1] for n in members if n.startswith("3/"))]
    members |= {"3/broken.png": b"this is not a png", "3/cut.png": good[:40]}
    profile = convert_image_upload(_zip(tmp_path / "s.zip", members), tmp_path / "s.npz", filename="s.zip")
    assert profile.images == 30 and profile.skipped_count == 2
    assert dict(profile.skipped).keys() == {"3/broken.png", "3/cut.png"}
    assert "not a readable PNG or JPEG" in dict(profile.skipped)["3/broken.png"]


def _two_classes() -> dict[str, bytes | None]:
    image = _png(np.zeros((8, 8), dtype=np.uint8))
    return {"a/1.png": image, "b/1.png": image}


def _symlink_zip(path: Path) -> Path:
    _zip(path, _two_classes())
    with zipfile.ZipFile(path, "a") as archive:
        info = zipfile.ZipInfo("a/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return path


def _link_tar(path: Path, kind: bytes = tarfile.SYMTYPE) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in _two_classes().items():
            assert data is not None
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a/link.png")
        link.type, link.linkname = kind, "/etc/passwd"
        archive.addfile(link)
    return path


def _bomb_zip(path: Path, name: str) -> Path:
    return _zip(path, _two_classes() | {name: bytes(50 * 2**20)})


def _npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _header_bomb_tgz(path: Path, kind: bytes, size: int, fill: bytes = b"x") -> Path:
    """A .tar.gz whose first header (a GNU long name, b"L", or a pax header, b"x") says ``size`` bytes
    follow; they are written through gzip a MB at a time, so building it needs no memory."""
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = kind, size
    with gzip.open(path, "wb", compresslevel=1) as archive:
        archive.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        block = fill * (2**20 // len(fill))
        for start in range(0, size, len(block)):
            archive.write(block[: size - start])
        archive.write(bytes(-size % 512))
        for name, data in _two_classes().items():
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            archive.write(info.tobuf(format=tarfile.USTAR_FORMAT) + (data or b"") + bytes(-info.size % 512))
        archive.write(bytes(1024))
    return path


def _sparse_tgz(path: Path) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        for name, data in _two_classes().items():
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            archive.addfile(info, io.BytesIO(data or b""))
        sparse = tarfile.TarInfo("a/disk.png")
        sparse.type = tarfile.GNUTYPE_SPARSE
        archive.addfile(sparse)
    return path


def _cut_tgz(path: Path) -> Path:
    data = _tar(path, _two_classes()).read_bytes()  # type: ignore[arg-type]
    path.write_bytes(data[: len(data) // 2])
    return path


def _directory_zip(path: Path, *, entries: int, declared: int) -> Path:
    """A zip of ``entries`` central directory entries (no file data) whose end record says ``declared``."""
    rows = []
    for i in range(entries):
        name = f"a/{i}.png".encode()
        fields = (zipfile.stringCentralDir, 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0)
        rows.append(struct.pack(zipfile.structCentralDir, *fields) + name)
    directory = b"".join(rows)
    count = min(declared, 0xFFFF)
    end = struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, count, count, len(directory), 0, 0)
    path.write_bytes(directory + end)
    return path


def _count_lying_zip(path: Path, declared: int) -> Path:
    """A real two-class zip whose end record declares ``declared`` entries."""
    data = bytearray(_zip(path, _two_classes()).read_bytes())
    end = data.rindex(zipfile.stringEndArchive)
    struct.pack_into("<2H", data, end + 8, declared, declared)
    path.write_bytes(bytes(data))
    return path


BAD_UPLOADS = {
    "empty class folder": (lambda p: _zip(p / "u.zip", _two_classes() | {"7/": None}), "Class folder '7' holds no"),
    "one class": (lambda p: _zip(p / "u.zip", {"a/1.png": _two_classes()["a/1.png"]}), "only one class folder"),
    "no images": (lambda p: _zip(p / "u.zip", {"a/notes.txt": b"hello"}), "holds no PNG or JPEG"),
    "loose image": (lambda p: _zip(p / "u.zip", _two_classes() | {"x.png": b"x"}), "outside any class folder"),
    "parent traversal": (lambda p: _zip(p / "u.zip", _two_classes() | {"../evil.png": b"x"}), "unsafe name"),
    "backslash traversal": (lambda p: _zip(p / "u.zip", _two_classes() | {"a\\..\\..\\e.png": b"x"}), "unsafe name"),
    "absolute name": (lambda p: _zip(p / "u.zip", _two_classes() | {"/etc/evil.png": b"x"}), "unsafe name"),
    "drive letter": (lambda p: _zip(p / "u.zip", _two_classes() | {"C:/evil.png": b"x"}), "unsafe name"),
    "zip symlink": (lambda p: _symlink_zip(p / "u.zip"), "holds a link"),
    "tar symlink": (lambda p: _link_tar(p / "u.tar.gz"), "holds a link"),
    "tar hard link": (lambda p: _link_tar(p / "u.tgz", tarfile.LNKTYPE), "holds a link"),
    "tar device": (lambda p: _link_tar(p / "u.tgz", tarfile.CHRTYPE), "neither a file nor a folder"),
    "zip bomb": (lambda p: _bomb_zip(p / "u.zip", "a/bomb.png"), "expands to far more than it stores .* limit is 200"),
    "zip bomb not an image": (lambda p: _bomb_zip(p / "u.zip", "a/bomb.bin"), "expands to far more than it stores"),
    "not a zip": (lambda p: (p / "u.zip").write_bytes(b"PK\x03\x04 broken") and p / "u.zip", "not a readable zip"),
    "tar long name": (lambda p: _header_bomb_tgz(p / "u.tar.gz", b"L", 2**20), "long file name of 1,024 KB"),
    "tar pax header": (lambda p: _header_bomb_tgz(p / "u.tgz", b"x", 2**20), "pax header of 1,024 KB"),
    # CVE-2024-6232's shape: tarfile's regular expression takes seconds over it; this reader refuses it at once.
    "tar pax redos": (lambda p: _header_bomb_tgz(p / "u.tgz", b"x", 60_000, b"0"), "not a readable .tar.gz"),
    "tar sparse file": (lambda p: _sparse_tgz(p / "u.tgz"), "sparse file"),
    "tar cut short": (lambda p: _cut_tgz(p / "u.tar.gz"), "not a readable .tar.gz"),
    "zip count in end record": (lambda p: _count_lying_zip(p / "u.zip", 65_000), "more than 20,000 files"),
    "zip directory past its count": (
        lambda p: _directory_zip(p / "u.zip", entries=20_001, declared=2),
        "more than 20,000 files",
    ),
    "npz count in end record": (lambda p: _count_lying_zip(p / "u.npz", 65_000), "more than 20,000 files"),
    "npz object array": (
        lambda p: _npz(p / "u.npz", x=np.array([{"a": 1}] * 2, dtype=object), y=np.array([0, 1])),
        "Python objects",
    ),
    "npz mismatched": (
        lambda p: _npz(p / "u.npz", x=np.zeros((10, 8, 8), dtype=np.uint8), y=np.arange(9)),
        "x holds 10 images but y holds 9 labels",
    ),
    "npz out of range": (lambda p: _npz(p / "u.npz", x=np.full((4, 8, 8), 9.5), y=np.arange(4)), "between 0 and 1"),
    "npz without y": (lambda p: _npz(p / "u.npz", x=np.zeros((4, 8, 8), dtype=np.uint8)), "no array named 'y'"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_refused_with_a_clear_message_and_leaves_no_file(case, tmp_path):
    build, message = BAD_UPLOADS[case]
    (tmp_path / "up").mkdir()
    (tmp_path / "out").mkdir()
    upload = build(tmp_path / "up")
    with pytest.raises(DatasetError, match=message):
        convert_image_upload(upload, tmp_path / "out" / "set.npz", filename=upload.name)
    assert list((tmp_path / "out").iterdir()) == []


HEADER_BOMBS = {
    "tar 50 MB long name": lambda p: _header_bomb_tgz(p / "u.tar.gz", b"L", 50 * 2**20),
    "tar 50 MB pax header": lambda p: _header_bomb_tgz(p / "u.tgz", b"x", 50 * 2**20),
    "zip of 200,000 entries declaring 2": lambda p: _directory_zip(p / "u.zip", entries=200_000, declared=2),
}


@pytest.mark.parametrize("case", list(HEADER_BOMBS))
def test_a_header_bomb_is_refused_before_its_headers_are_read_into_memory(case, tmp_path):
    upload = HEADER_BOMBS[case](tmp_path)
    assert upload.stat().st_size < 12 * 2**20  # a small upload ...
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError):
            convert_image_upload(upload, tmp_path / "set.npz", filename=upload.name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # ... that tarfile (a 50 MB bytes object) or ZipFile (an object per entry) would turn into 50+ MB.
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MB"
    assert not (tmp_path / "set.npz").exists()


def test_too_many_files_are_refused(digits, tmp_path):
    upload = _zip(tmp_path / "many.zip", _digit_members(digits, per_class=2))
    with pytest.raises(DatasetError, match="more than 5 files"):
        convert_image_upload(upload, tmp_path / "set.npz", filename="many.zip", limits=ArchiveLimits(max_files=5))
    assert not (tmp_path / "set.npz").exists()


def test_image_rows_name_the_file_that_cannot_be_decoded(digits_set):
    meta = read_image_meta(digits_set[0])
    assert meta is not None
    with pytest.raises(ValueError, match="'bad.png' cannot be used"):
        image_rows([("bad.png", b"nope")], meta)


def test_search_refuses_a_broken_archive_with_one_line(tmp_path, capsys):
    broken = tmp_path / "images.zip"
    broken.write_bytes(b"PK\x03\x04 this is not a zip")
    assert main(["search", str(broken), "--target", "label", "--out", str(tmp_path / "m.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a readable zip archive" in err
    assert not (tmp_path / "m.zip").exists()


@pytest.mark.slow
def test_a_bundle_trained_on_images_predicts_a_folder_of_pngs_like_the_engine(digits, digits_set, tmp_path, capsys):
    destination, _ = digits_set
    data = prepare_data(destination, target="label", seed=0)
    config = SearchConfig(target="label", max_trials=2, max_epochs=3, patience=2, cv_folds=1, seed=0)
    best = run_search(config, data, artifacts_dir=tmp_path / "artifacts").best
    assert best is not None and best.architecture["space"] == "cnn"
    model = load_final_model(best.architecture, best.weights_path, n_inputs=data.n_features, n_outputs=data.n_outputs)
    bundle = export_bundle(
        model=model,
        architecture=best.architecture,
        preprocessing=data.preprocessing,
        metrics=best.metrics,
        out_path=tmp_path / "digits.zip",
        check_rows=data.raw_test_rows[:40],
    )
    with zipfile.ZipFile(bundle) as archive:
        assert json.loads(archive.read("metrics.json"))["checks"]["predict_py_images"] == 8
        assert "pip install numpy onnxruntime pillow" in archive.read("MODEL_CARD.md").decode()
        archive.extractall(tmp_path / "bundle")
    folder = tmp_path / "pngs"
    files = {name: data for name, data in _digit_members(digits, per_class=3).items() if data is not None}
    for name, png in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(png)
    meta = data.preprocessing["image"]
    names = sorted(files)
    outputs = predict_raw(model, encode_rows(image_rows([(n, files[n]) for n in names], meta), data.preprocessing))
    expected = decode_outputs(outputs, data.preprocessing)
    run = subprocess.run(
        [sys.executable, "predict.py", str(folder), "-o", str(tmp_path / "out.csv")],
        cwd=tmp_path / "bundle",
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "out.csv", newline="") as handle:
        got = list(csv.DictReader(handle))
    assert [row["file"] for row in got] == names and [row["prediction"] for row in got] == expected
    logits = outputs.astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    for row, probabilities in zip(got, softmax, strict=True):
        assert math.isclose(float(row["probability"]), probabilities.max(), rel_tol=1e-4)
    np.savez(tmp_path / "new.npz", x=np.stack([np.asarray(Image.open(folder / n)) for n in names]))
    from_npz = predict_images(tmp_path / "new.npz", bundle_dir=tmp_path / "bundle")
    assert [(name, label) for name, label, _ in from_npz] == [(str(i), p) for i, p in enumerate(expected)]
    # The engine's CLI predicts one image through the same bundle.
    assert main(["predict", str(bundle), str(folder / names[0])]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith(f"{Path(names[0]).name},{expected[0]},")
