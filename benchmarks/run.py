"""`make bench`: run every benchmark and write its tables under benchmarks/results/."""

import sys
import tempfile
from pathlib import Path

from benchmarks import search_quality


def main() -> int:
    with tempfile.TemporaryDirectory() as workdir:
        path = search_quality.write(search_quality.run(Path(workdir)))
    sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
