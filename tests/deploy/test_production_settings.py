"""Production settings from the environment pass Django's deployment checklist."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check_deploy(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "HTTPS", "SECRET_KEY"}}
    environment.update(NAS_VAR_DIR=str(tmp_path), ALLOWED_HOSTS="nas.example.com", **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_behind_https(tmp_path):
    done = check_deploy(tmp_path, HTTPS="true", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_flags_the_plain_http_default(tmp_path):
    done = check_deploy(tmp_path, DEBUG="true", SECRET_KEY=secrets.token_urlsafe(50))
    assert done.returncode != 0
    for warning in ["security.W004", "security.W008", "security.W012", "security.W016", "security.W018"]:
        assert warning in done.stdout + done.stderr
