"""Data at scale: how long, and how much memory, an upload takes from the file to the arrays a
search trains on, with this code and with an earlier commit's, in the same run.

Two synthetic sets, written once:

- images: BENCH_SCALE_IMAGES (50,000) colour 32×32 images in 10 classes, as the .npz a user uploads
  (x: N×32×32×3 uint8, y); the upload's work is ``convert_image_upload`` (checks, the stored image
  set), ``profile_csv`` (the dataset page's profile) and ``prepare_data`` (split, fit, encode);
- a table: BENCH_SCALE_ROWS (1,000,000) rows of 40 numeric and 10 categorical columns (some cells
  missing) and a class target; the work is ``profile_csv`` then ``prepare_data``.

Each step runs in a fresh Python process, which reports its own time and peak resident memory
(``ru_maxrss``; the upload's peak is the largest step's): with this checkout's ``nas_engine``, then
with BENCH_SCALE_BASELINE's (a git
revision, default the last one before the columnar pipeline; checked out to a temporary worktree),
on the same files. The baseline runs without pyarrow, as it did then: with pyarrow installed, pandas
stores its text cells as Arrow strings, and that code's cell-by-cell path became 3x slower (50,000
images: 982 s and 17.6 GB, against 309 s and 8.0 GB). BENCH_SCALE_BASELINE_IMAGES / _ROWS run the
baseline on fewer (its time and memory grow linearly with them, and the full sizes take it minutes
and gigabytes). Writes
benchmarks/results/scale.{md,json}.

    python -m benchmarks.scale          # about 15 minutes with the baseline at full size
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.report import QUICK, run_and_print, write_table

ROOT = Path(__file__).resolve().parent.parent
IMAGES = int(os.environ.get("BENCH_SCALE_IMAGES", "5000" if QUICK else "50000"))
ROWS = int(os.environ.get("BENCH_SCALE_ROWS", "100000" if QUICK else "1000000"))
BASELINE = os.environ.get("BENCH_SCALE_BASELINE", "861e77f")
BASELINE_IMAGES = int(os.environ.get("BENCH_SCALE_BASELINE_IMAGES", str(IMAGES)))
BASELINE_ROWS = int(os.environ.get("BENCH_SCALE_BASELINE_ROWS", str(ROWS)))
GOALS = {"images": (30.0, 2.5), "table": (60.0, 4.0)}  # seconds, GB: issue 25's targets at full size

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
if sys.argv[6] == "without-arrow":
    sys.modules["pyarrow"] = None  # the baseline as it ran: pandas without pyarrow (python-object strings)
sys.path.insert(0, sys.argv[1])
import nas_engine
from nas_engine.images import convert_image_upload
step, source, work, target = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
started = time.perf_counter()
if step == "convert":
    limits = nas_engine.ArchiveLimits(max_files=10**7, max_total_bytes=2**40, max_file_bytes=2**40)
    convert_image_upload(source, work / "set.npz", filename=source.name, limits=limits)
elif step == "profile":
    nas_engine.profile_csv(source, limits=nas_engine.CsvLimits(max_columns=None, max_rows=10**8))
else:
    nas_engine.prepare_data(source, target=target)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"s": time.perf_counter() - started, "gb": peak}))
"""


def write_images(path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), y=rng.integers(0, 10, n))
    return path


def write_table_csv(path: Path, n: int) -> Path:
    import pandas as pd

    rng = np.random.default_rng(0)
    columns = {f"x{i}": np.round(rng.normal(size=n) * 10 ** (i % 4), 3) for i in range(40)}
    frame = pd.DataFrame(columns).astype(str)
    for i in range(0, 40, 8):  # some missing cells, as real tables have
        frame.loc[rng.random(n) < 0.02, f"x{i}"] = ""
    for i in range(10):
        frame[f"c{i}"] = rng.choice([f"v{j}" for j in range(3 + 7 * i)], n)
    frame["y"] = np.where(frame["x1"].astype(float) + rng.normal(size=n) > 0, "yes", "no")
    frame.to_csv(path, index=False)
    return path


def _measure(root: Path, kind: str, source: Path, workdir: Path) -> dict:
    """Each step of the upload in a fresh process (its own time and peak memory), in order."""
    steps: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as work:
        path, target = source, "y"
        names = ("convert", "profile", "prepare") if kind == "images" else ("profile", "prepare")
        for step in names:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(root), step, str(path), work, target,
                 "with-arrow" if root == ROOT else "without-arrow"],
                capture_output=True, text=True, check=True, cwd=work, timeout=3600,
            )  # fmt: skip
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            steps[f"{step}_s"], steps[f"{step}_gb"] = measured["s"], measured["gb"]
            if step == "convert":
                path, target = Path(work) / "set.npz", "label"
    steps["total_s"] = sum(v for k, v in steps.items() if k.endswith("_s"))
    steps["peak_gb"] = max(v for k, v in steps.items() if k.endswith("_gb"))
    return steps


def run(workdir: Path) -> list[dict]:
    baseline = workdir / "baseline"
    subprocess.run(["git", "worktree", "add", "-f", "--detach", str(baseline), BASELINE], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    rows = []
    try:
        sizes = {"images": (IMAGES, BASELINE_IMAGES), "table": (ROWS, BASELINE_ROWS)}
        for kind, (size, baseline_size) in sizes.items():
            for code, root, n in (("this commit", ROOT, size), (f"baseline {BASELINE}", baseline, baseline_size)):
                name = f"{kind}-{n}" + (".npz" if kind == "images" else ".csv")
                source = workdir / name
                if not source.exists():
                    (write_images if kind == "images" else write_table_csv)(source, n)
                measured = _measure(root, kind, source, workdir)
                rows.append({"data": kind, "size": n, "code": code} | {k: round(v, 2) for k, v in measured.items()})
                print(rows[-1], flush=True)  # noqa: T201
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)
    return rows


def write(rows: list[dict]) -> Path:
    notes = [
        "From the uploaded file to the arrays a search trains on: each step in a fresh process, its time and "
        "peak resident memory, with this commit's code and the baseline's on the same synthetic files "
        "(`python -m benchmarks.scale`, this 2-core machine). Images: colour 32×32 in 10 classes, uploaded as "
        ".npz (convert, profile, prepare); table: 40 numeric and 10 categorical columns and a class target "
        "(profile, prepare).",
        "",
    ]
    for kind, (seconds, gigabytes) in GOALS.items():
        ours = next((r for r in rows if r["data"] == kind and r["code"] == "this commit"), None)
        base = next((r for r in rows if r["data"] == kind and r["code"] != "this commit"), None)
        if ours is None:
            continue
        line = (
            f"- {kind}, {ours['size']:,}: {ours['total_s']} s and {ours['peak_gb']} GB at the peak "
            f"(goal < {seconds:g} s and < {gigabytes:g} GB at full size)"
        )
        if base is not None:
            scale = ours["size"] / base["size"]
            line += (
                f"; the baseline took {base['total_s']} s and {base['peak_gb']} GB for {base['size']:,}"
                + (f" (about {base['total_s'] * scale:.0f} s at this size)" if scale != 1 else "")
                + f": **{base['total_s'] * scale / ours['total_s']:.0f}x faster**"
            )
        notes.append(line + ".")
    return write_table("scale", rows, title="Data at scale: upload to training arrays", notes=notes)


if __name__ == "__main__":
    sys.exit(run_and_print(run, write))
