"""`nas_engine predict` opens bundles that may come from anyone: it unzips them within limits (no
names outside the folder, no links, a bounded number of members and of inflated bytes) and runs
model.onnx; TorchScript (model.pt, whose loading can run code) only when --torchscript asks."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import onnx
import onnx.helper
import onnx.numpy_helper
import pytest
import torch

from nas_engine.bundle_files import BundleLimits, extract_bundle
from nas_engine.cli import main
from nas_engine.export import _export_torchscript


@pytest.fixture(scope="module")
def bundle_files(mixed_data, tmp_path_factory) -> dict[str, bytes]:
    """The members a predict needs: a small real model as ONNX and TorchScript, and its preprocessing."""
    folder = tmp_path_factory.mktemp("bundle_files")
    torch.manual_seed(0)
    model = torch.nn.Linear(mixed_data.n_features, mixed_data.n_outputs).eval()
    _export_torchscript(model, mixed_data.n_features, folder / "model.pt")
    # The same layer as one ONNX Gemm, written directly (the torch exporter takes seconds to start).
    weight = onnx.numpy_helper.from_array(model.weight.detach().numpy(), "weight")
    bias = onnx.numpy_helper.from_array(model.bias.detach().numpy(), "bias")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Gemm", ["input", "weight", "bias"], ["output"], transB=1)],
        "linear",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", mixed_data.n_features])],
        [onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", mixed_data.n_outputs])],
        initializer=[weight, bias],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), folder / "model.onnx")
    (folder / "preprocessing.json").write_text(json.dumps(mixed_data.preprocessing))
    return {name: (folder / name).read_bytes() for name in ("model.onnx", "model.pt", "preprocessing.json")}


def write_bundle(path: Path, files: dict[str, bytes], extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for info, data in extra:
            archive.writestr(info, data)
    return path


def _link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_a_good_bundle_predicts_with_onnx_and_with_torchscript_when_asked(bundle_files, mixed_csv, tmp_path):
    bundle = write_bundle(tmp_path / "model.zip", bundle_files)
    assert main(["predict", str(bundle), str(mixed_csv), "-o", str(tmp_path / "onnx.csv")]) == 0
    assert main(["predict", str(bundle), str(mixed_csv), "-o", str(tmp_path / "ts.csv"), "--torchscript"]) == 0
    onnx = (tmp_path / "onnx.csv").read_text().splitlines()
    assert len(onnx) == 201 and onnx == (tmp_path / "ts.csv").read_text().splitlines()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([("../escaped.txt", b"x")], "points outside the bundle"),
        ([("/tmp/absolute.txt", b"x")], "points outside the bundle"),
        ([(_link("model_link"), b"/etc/passwd")], "is a link"),
        ([(f"many/{i}.txt", b"") for i in range(64)], "holds more than 64 files"),
    ],
    ids=["dot-dot", "absolute", "link", "too-many-members"],
)
def test_a_bundle_with_unsafe_members_is_refused(bundle_files, mixed_csv, tmp_path, capsys, extra, message):
    bundle = write_bundle(tmp_path / "model.zip", bundle_files, extra)
    out = tmp_path / "out" / "predictions.csv"
    out.parent.mkdir()
    assert main(["predict", str(bundle), str(mixed_csv), "-o", str(out)]) == 2
    assert message in _error(capsys)
    assert not out.exists() and not (tmp_path / "escaped.txt").exists()


def test_inflated_bytes_are_counted_against_the_limit(tmp_path):
    bundle = write_bundle(tmp_path / "bomb.zip", {"model.onnx": bytes(3 * 1024 * 1024)})  # 3 MB of zeros, ~3 KB
    assert bundle.stat().st_size < 10_000
    with pytest.raises(Exception, match="expands to more than 2 MB"):
        extract_bundle(bundle, tmp_path / "out", BundleLimits(max_total_bytes=2 * 1024 * 1024))
    (tmp_path / "ok").mkdir()
    extract_bundle(bundle, tmp_path / "ok", BundleLimits(max_total_bytes=4 * 1024 * 1024))
    unpacked = tmp_path / "ok" / "model.onnx"
    assert unpacked.stat().st_size == 3 * 1024 * 1024 and stat.S_IMODE(unpacked.stat().st_mode) == 0o600


def test_without_onnxruntime_it_refuses_rather_than_load_torchscript(
    bundle_files, mixed_csv, tmp_path, capsys, monkeypatch
):
    bundle = write_bundle(tmp_path / "model.zip", bundle_files)
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as where it is not installed
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(bundle), str(mixed_csv), "-o", str(out)]) == 2
    assert "onnxruntime is not installed" in _error(capsys) and not out.exists()
    assert main(["predict", str(bundle), str(mixed_csv), "-o", str(out), "--torchscript"]) == 0
    assert len(out.read_text().splitlines()) == 201
