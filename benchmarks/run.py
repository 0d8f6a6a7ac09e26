"""`make bench`: run every benchmark and write its tables under benchmarks/results/.

`make bench-quick` (BENCH_QUICK=1) runs five that answer the headline questions, each at its
smallest honest size (one seed, short budgets), in about 12 minutes: search quality, the tabular
suite (4 small tables at 30 s), the NAS table, overhead and live latency. Scaling is left out: with
fewer than its 16 models the last model's tail decides the ratio (8 models gave 1.53x where 16 give
1.91x); it runs in 4 minutes alone.
"""

import sys
import tempfile
import time
from pathlib import Path

from benchmarks import (
    cnn_scale,
    compression,
    efficiency,
    estimate,
    images,
    imbalance,
    live,
    load,
    nasbench,
    overhead,
    scale,
    scaling,
    search_quality,
    serving,
    tabular_refit,
    tabular_suite,
)
from benchmarks.report import QUICK

EVERY = (
    search_quality,
    tabular_suite,
    tabular_refit,
    imbalance,
    efficiency,
    compression,
    images,
    estimate,
    load,
    live,
    serving,
    scale,
    cnn_scale,
    overhead,
    scaling,
    nasbench,
)
HEADLINE = (search_quality, tabular_suite, nasbench, overhead, live)


def main() -> int:
    for benchmark in HEADLINE if QUICK else EVERY:
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as workdir:
            path = benchmark.write(benchmark.run(Path(workdir)))
        sys.stdout.write(path.read_text())
        sys.stdout.write(f"\n({benchmark.__name__}: {time.monotonic() - started:.0f} s)\n\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
