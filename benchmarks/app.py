"""Benchmarks that measure the running app: run a module's `measure` under `python -m webapp.stack
exec` (a private embedded Redis and SQLite database, as the tests use), and the setup each needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_in_stack(module: str, workdir: Path, *, use_env_flag: str, timeout: float):
    """Run ``python -m MODULE measure OUT`` inside the app's stack and return the JSON it wrote.
    The environment's DATABASE_URL, REDIS_URL and MEDIA_ROOT are dropped unless ``use_env_flag``
    (an environment variable) is "1"."""
    env = dict(os.environ)
    if os.environ.get(use_env_flag) != "1":
        for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"):
            env.pop(name, None)
    env.update(NAS_VAR_DIR=str(workdir / "var"), PYTHONUNBUFFERED="1")
    out = workdir / f"{module.rsplit('.', 1)[-1]}.json"
    command = [sys.executable, "-m", "webapp.stack", "exec", "--", sys.executable, "-m", module, "measure", str(out)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=timeout)
    return json.loads(out.read_text())


def setup_django() -> Path:
    """Inside the stack: Django set up, the private database migrated; returns NAS_VAR_DIR."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    var = Path(os.environ["NAS_VAR_DIR"])
    var.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    return var


def upload_csv(owner, csv_path: Path):
    """A dataset of ``owner`` made from ``csv_path`` as an upload makes it (profiled, stored)."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from webapp.datasets.services import dataset_create

    handle = TemporaryUploadedFile(csv_path.name, "text/csv", csv_path.stat().st_size, "utf-8")
    handle.write(csv_path.read_bytes())
    handle.seek(0)
    try:
        return dataset_create(owner=owner, uploaded_file=handle)
    finally:
        handle.close()


def stack_main(argv: list[str], *, measure, run, write) -> int:
    """The command line of such a benchmark: ``measure OUT`` inside the stack (what ``run_in_stack``
    calls), else run it in a temporary folder, write its tables and print the Markdown one."""
    import tempfile

    if argv[:1] == ["measure"]:
        measure(Path(argv[1]))
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        path = write(run(Path(workdir)))
    sys.stdout.write(path.read_text())
    return 0
