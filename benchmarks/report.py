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


class Resume:
    """Rows a long benchmark already finished, kept one JSON line each in the file named by an
    environment variable (e.g. BENCH_TR_RESUME=FILE): a run that stopped picks up where it was."""

    def __init__(self, variable: str):
        self.path = Path(os.environ[variable]) if os.environ.get(variable) else None
        lines = self.path.read_text().splitlines() if self.path and self.path.exists() else []
        self.done = [json.loads(line) for line in lines if line.strip()]

    def kept(self, dataset: str, budget: float) -> dict | None:
        """The last finished row of this table at this budget, or None."""
        rows = [r for r in self.done if r["dataset"] == dataset and r.get("budget_seconds") == budget]
        return rows[-1] if rows else None

    def add(self, row: dict) -> None:
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
