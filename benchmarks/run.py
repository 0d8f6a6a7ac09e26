"""`make bench`: run every benchmark and write its tables under benchmarks/results/."""

import sys
import tempfile
from pathlib import Path

from benchmarks import compression, efficiency, estimate, images, load, nasbench, scaling, search_quality


def main() -> int:
    for benchmark in (search_quality, efficiency, compression, images, estimate, load, scaling, nasbench):
        with tempfile.TemporaryDirectory() as workdir:
            path = benchmark.write(benchmark.run(Path(workdir)))
        sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
