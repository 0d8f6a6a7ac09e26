"""The columnar pipeline: raw cells are parsed and encoded a column at a time with numpy, and an
image set's pixels go from their uint8 array to the network's floats without ever being text. Each
is checked against the cell-by-cell definition it replaces (``parse_number``, ``category_of``, the
row encoder) on messy cells, and the image path against reading the same set as a table."""

from __future__ import annotations

import numpy as np
import pytest

import nas_engine
from nas_engine import runtime
from nas_engine.images import convert_image_upload, read_image_table

MESSY = [
    "1", "2.5", " 3 ", "", "NA", "nan", "NaN", "?", "null", "None", None, "inf", "-inf", "1e400", "1_000", "abc",
    "1,5", "0x10", "  ", "-0", "1e-5", ".5", "5.", "+7", " n/a ", "N/A", "\\t4\\t",
]  # fmt: skip


def reference_encode(rows: list[dict], prep: dict) -> np.ndarray:
    """The row encoder as it was, one cell at a time: the definition the columnar one must meet."""
    blocks = []
    for feature in prep["features"]:
        cells = [row.get(feature["name"]) for row in rows]
        if feature["kind"] == "numeric":
            values = [runtime.parse_number(c) for c in cells]
            column = np.array([feature["median"] if v is None else v for v in values], dtype=np.float64)
            if "scale" in feature:
                z = (column - feature["center"]) / feature["scale"]
                blocks.append((z / np.sqrt(1.0 + (z / feature["clip"]) ** 2)).reshape(-1, 1))
            else:
                blocks.append(((column - feature["mean"]) / feature["std"]).reshape(-1, 1))
        elif feature["kind"] == "date":
            parts = [runtime.date_parts(c) or feature["median"] for c in cells]
            dates = np.array(parts, dtype=np.float64).reshape(len(cells), 4)
            blocks.append((dates - np.array(feature["mean"])) / np.array(feature["std"]))
        else:
            slot = {name: i for i, name in enumerate(feature["categories"])}
            other = len(feature["categories"])
            one_hot = np.zeros((len(rows), other + 1))
            for i, cell in enumerate(cells):
                one_hot[i, slot.get(runtime.category_of(cell), other)] = 1.0
            blocks.append(one_hot)
    return np.hstack(blocks).astype(np.float32)


PREP = {
    "features": [
        {"name": "a", "kind": "numeric", "median": 0.1, "mean": 0.0, "std": 2.0},
        {"name": "b", "kind": "numeric", "median": 2.0, "center": 1.0, "scale": 2.0, "clip": 3.0},
        {"name": "c", "kind": "categorical", "categories": ["x", "y", "z", "None"]},
        {
            "name": "d",
            "kind": "date",
            "median": [2024, 1, 1, 19700],
            "mean": [2024, 6, 3, 19800],
            "std": [1, 3, 2, 100],
        },
    ],
    "n_features": 1 + 1 + 5 + 4,
}


@pytest.mark.parametrize("cell", MESSY)
def test_every_messy_cell_parses_and_encodes_as_cell_by_cell(cell):
    rows = [{"a": cell, "b": cell, "c": cell, "d": cell}, {"a": "1", "b": "2", "c": " x ", "d": "2024-02-29"}]
    assert np.array_equal(runtime.encode_rows(rows, PREP), reference_encode(rows, PREP))
    expected = runtime.parse_number(cell)
    parsed = runtime.parse_numbers([cell])[0]
    assert (np.isnan(parsed) and expected is None) or parsed == expected


def test_a_large_mixed_table_encodes_exactly_as_cell_by_cell():
    rng = np.random.default_rng(0)
    rows = [
        {
            "a": str(rng.normal()) if i % 5 else str(rng.choice(MESSY[:20])),
            "b": repr(float(rng.lognormal())),
            "c": rng.choice(["x", "y", " z", "w", "", "None"]) if i % 11 else None,
            "d": rng.choice(["2024-01-02", "12/31/2023", "", "bad"]),
        }
        for i in range(3000)
    ]
    assert np.array_equal(runtime.encode_rows(rows, PREP), reference_encode(rows, PREP))
    clean = [{"a": str(v), "b": "1", "c": "x", "d": ""} for v in rng.normal(size=500)]  # the fast path
    assert np.array_equal(runtime.encode_rows(clean, PREP), reference_encode(clean, PREP))


def test_a_missing_column_is_refused_by_both_encoders():
    with pytest.raises(ValueError, match="missing column"):
        runtime.encode_rows([{"a": "1"}], PREP)
    with pytest.raises(ValueError, match="missing column"):
        runtime.encode_columns({"a": np.array(["1"], dtype=object)}, PREP, 1)


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (300, 10, 10, 3), dtype=np.uint8)
    x[:, 0, 0, :] = 7  # a constant corner, as real photos have borders
    np.savez(folder / "upload.npz", x=x, y=rng.choice(["cat", "dog", "bird"], 300))
    convert_image_upload(folder / "upload.npz", folder / "set.npz", filename="upload.npz")
    return folder / "set.npz"


def test_an_image_sets_pixels_encode_as_the_table_of_their_cells(image_set):
    data = nas_engine.prepare_data(image_set, target="label", seed=5)
    table = read_image_table(image_set)  # the pixels as text cells, as a CSV of them would read
    rows = table.to_dict("records")
    assert data.preprocessing["version"] == 1 and data.image_shape == (3, 10, 10)
    encoded = np.concatenate([data.X_train, data.X_val, data.X_test])
    assert encoded.shape == (300, 300)
    # Every encoded row is the cell-by-cell encoding of one row of the table, with the fitted numbers.
    reference = reference_encode(rows, data.preprocessing)
    assert {r.tobytes() for r in encoded} == {r.tobytes() for r in reference}
    train_rows = {r.tobytes() for r in data.X_train}
    kept = [row for row, ref in zip(rows, reference, strict=True) if ref.tobytes() in train_rows]
    corner = data.preprocessing["features"][0]
    values = np.array([float(row["p0"]) for row in kept])
    assert (corner["median"], corner["mean"], corner["std"]) == (7.0, 7.0, 1.0) == (float(np.median(values)), 7.0, 1.0)
    green = data.preprocessing["features"][100 + 55]
    column = np.array([float(row["p155"]) for row in kept])
    # (the same numbers up to the order the training rows are summed in)
    assert green["std"] == pytest.approx(float(column.std()), rel=1e-12) and green["median"] == float(np.median(column))
    assert len(data.raw_test_rows) == len(data.X_test) and set(data.raw_test_rows[0]) == set(table.columns)


def test_an_image_sets_profile_is_the_profile_of_its_table(image_set, tmp_path):
    as_csv = tmp_path / "set.csv"
    read_image_table(image_set).to_csv(as_csv, index=False)
    from_array = nas_engine.profile_csv(image_set, limits=nas_engine.CsvLimits(max_columns=None)).to_dict()
    from_text = nas_engine.profile_csv(as_csv, limits=nas_engine.CsvLimits(max_columns=None)).to_dict()
    assert from_array["columns"] == from_text["columns"] and from_array["rows"] == 300
    assert from_array["columns"][0]["unique"] == 1 and from_array["leakage_checked"] is False


def test_a_large_table_is_described_from_a_sample_with_exact_rows(tmp_path, monkeypatch):
    from nas_engine import profiling

    rng = np.random.default_rng(2)
    rows = 3000
    lines = ["id,amount,colour,label"]
    for i in range(rows):
        amount = "" if i % 10 == 0 else f"{rng.normal():.4f}"
        lines.append(f"{i},{amount},{rng.choice(['red', 'green', 'blue'])},{rng.choice(['a', 'b'])}")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    whole = nas_engine.profile_csv(path)
    monkeypatch.setattr(profiling, "PROFILE_SAMPLE_ROWS", 1000)
    sampled = nas_engine.profile_csv(path)
    assert (sampled.rows, sampled.sampled_rows, whole.sampled_rows) == (3000, 1000, None)
    assert sampled.to_dict()["sampled_rows"] == 1000 and "sampled_rows" not in whole.to_dict()
    assert sampled.preview == whole.preview  # the file's first rows
    amount = sampled.column("amount")
    assert amount.missing == pytest.approx(whole.column("amount").missing, rel=0.2)  # 300, scaled from ~100
    assert sum(sampled.column("colour").distribution.counts) == pytest.approx(3000, abs=3)
    assert [w.kind for w in sampled.warnings if w.column == "id"] == ["id_like"]  # unique in every sampled row
