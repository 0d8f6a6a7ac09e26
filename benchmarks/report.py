"""Writing a benchmark's rows: the JSON as measured, and a Markdown table under a short explanation."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

QUICK = os.environ.get("BENCH_QUICK") == "1"  # `make bench-quick`: each benchmark at its smallest honest size
# Quick results go to a folder of their own: they never overwrite the full runs' tables.
RESULTS = Path(__file__).parent / "results" / ("quick" if QUICK else "")


def write_table(name: str, rows: list[dict], *, title: str, notes: list[str]) -> Path:
    """Write ``results/NAME.json`` (the rows) and ``results/NAME.md`` (title, notes, one table row per
    row, columns in the first row's order); return the Markdown file's path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2))
    columns = list(rows[0])
    lines = [f"# {title}", "", *notes, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_and_print(run, write) -> int:
    """A benchmark's command line: run it in a temporary folder, write its tables, print the Markdown."""
    with tempfile.TemporaryDirectory() as workdir:
        path = write(run(Path(workdir)))
    sys.stdout.write(path.read_text())
    return 0
