"""Debian's Chromium (installed by `make test` / `make chromium`) and the flags it runs with here:
shared by the browser tests and the benchmarks that load pages."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
