"""var/ is the server's own: the secret key is created once, whole and private (0600), even by
processes starting at once; settings make var/ and the media folder 0700; the stack's processes
create files with umask 077."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


ROUNDS = 100
# Each racer: load private_files on its own (no Django, no package import), wait for a shared start
# time, then make (or read) the key in each of ROUNDS fresh folders; print the keys it got.
RACER = """
import importlib.util, json, os, sys, time
spec = importlib.util.spec_from_file_location("private_files", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
os.umask(0o022)  # a permissive umask: the key's mode must not depend on it
folder, start, rounds = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
while time.time() < start:
    pass
print(json.dumps([module.read_or_create_secret_key(module.Path(folder, str(i), "secret_key")) for i in range(rounds)]))
"""


def test_processes_starting_at_once_end_up_with_one_whole_private_key(tmp_path):
    """Processes in step make a key in each of ROUNDS fresh folders: every race has one winner."""
    for i in range(ROUNDS):
        (tmp_path / str(i)).mkdir()
    start = time.time() + 1.5
    module = ROOT / "webapp" / "private_files.py"
    argv = [sys.executable, "-c", RACER, str(module), str(tmp_path), str(start), str(ROUNDS)]
    racers = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    keys = [json.loads(racer.communicate(timeout=30)[0]) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    for i in range(ROUNDS):
        path = tmp_path / str(i) / "secret_key"
        seen = {each[i] for each in keys}
        assert len(seen) == 1, f"round {i}: {len(seen)} keys"  # every process uses the winner's key
        assert path.read_text() == seen.pop() and len(path.read_text()) == 50 and _mode(path) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "MEDIA_ROOT", "NAS_VAR_DIR")}
    return env | extra


def test_settings_make_var_and_media_private_and_the_key_0600(tmp_path):
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)
    (old / "secret_key").write_text("an-old-key-made-before-this-fix")
    os.chmod(old / "secret_key", 0o644)
    for var in (fresh, old):
        subprocess.run(
            [sys.executable, "-c", "import os; os.umask(0o022); import webapp.settings"],
            cwd=ROOT, env=_child_env(NAS_VAR_DIR=str(var)), check=True,
        )  # fmt: skip
        assert _mode(var) == 0o700 and _mode(var / "media") == 0o700 and _mode(var / "secret_key") == 0o600
    assert (old / "secret_key").read_text() == "an-old-key-made-before-this-fix"


def test_the_stacks_processes_create_private_files(tmp_path):
    made = tmp_path / "made.txt"
    subprocess.run(
        [sys.executable, "-m", "webapp.stack", "exec", "--", sys.executable, "-c", f"open({str(made)!r}, 'w')"],
        cwd=ROOT, env=_child_env(NAS_VAR_DIR=str(tmp_path / "var"), REDIS_URL="redis://127.0.0.1:1/0"), check=True,
        preexec_fn=lambda: os.umask(0o022),  # started from a shell with a permissive umask
    )  # fmt: skip
    assert _mode(made) == 0o600
