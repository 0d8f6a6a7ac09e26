"""Paired A/B of two CLI settings on the tabular suite's tables: both searches run side by side on the
same table at the same time (one thread each), so machine load hits both alike, and each bundle is
scored on the suite's fixed 20 %.

    AB_VARIANTS='{"A": ["--max-epochs", "50"], "B": ["--max-epochs", "150"]}' python -m benchmarks.tabular_ab

Env: AB_VARIANTS (JSON: name -> extra CLI flags; required), AB_BUDGET (seconds, default 45),
AB_DATASETS (comma-separated; default the dev half: tune only there), AB_OUT (JSONL appended to,
default var/bench/tabular_ab.jsonl). Not part of `make bench`: it answers one question at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import tabular_suite as ts


def main() -> int:
    variants: dict[str, list[str]] = json.loads(os.environ["AB_VARIANTS"])
    budget = float(os.environ.get("AB_BUDGET", "45"))
    chosen = os.environ.get("AB_DATASETS")
    names = chosen.split(",") if chosen else [d.name for d in ts.DATASETS if d.half == "dev"]
    out = Path(os.environ.get("AB_OUT") or ts.ROOT / "var" / "bench" / "tabular_ab.jsonl")
    work = out.parent / "tabular_ab"
    for name in names:
        dataset = ts.BY_NAME[name]
        split = ts.split(dataset)
        running = {}
        for variant, flags in variants.items():
            folder = work / name / variant
            folder.mkdir(parents=True, exist_ok=True)
            bundle = folder / "bundle.zip"
            bundle.unlink(missing_ok=True)
            command = ts._nas_command(dataset, split, budget, bundle) + flags
            with (folder / "stderr").open("w") as err:
                process = subprocess.Popen(
                    command, cwd=ts.ROOT, env={**os.environ, **ts.ONE_THREAD}, stdout=subprocess.DEVNULL, stderr=err
                )
            running[variant] = process, time.monotonic(), folder, bundle
        for variant, (process, started, folder, bundle) in running.items():
            process.wait()
            seconds = time.monotonic() - started
            if process.returncode == 0:
                score, error, _ = ts._predict(dataset, split, bundle, folder)
            else:
                score, error = None, f"search exit {process.returncode}: {ts._last_line(folder / 'stderr')}"
            facts = ts._bundle_facts(bundle) if bundle.exists() else {}
            row = {
                "dataset": name, "variant": variant, "flags": variants[variant], "budget": budget,
                "score": score, "error": error, "seconds": round(seconds, 1),
                "space": facts.get("space"), "params": facts.get("params"),
            }  # fmt: skip
            sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
