"""The README's API example, run as a script against a live server (daphne) and a real Celery
worker: token -> upload -> search -> wait -> bundle -> predictions from the endpoint, which equal
what the downloaded bundle's predict.py prints for the same rows."""

import csv
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT
from webapp.accounts.tokens import token_create
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(600)]


def readme_example() -> str:
    """The README's Python block under "Automating it: the REST API"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Automating it: the REST API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readmes_example_runs_against_a_live_server(
    alice, live_server_url, celery_worker_process, breast_cancer_csv, tmp_path
):
    token = token_create(user=alice, name="readme")[1]
    script = tmp_path / "example.py"
    script.write_text(readme_example(), encoding="utf-8")
    env = dict(os.environ, NAS_URL=live_server_url, NAS_TOKEN=token, NAS_CSV=str(breast_cancer_csv))
    env.update(NAS_TARGET="diagnosis", NAS_BUDGET="10")
    command = [sys.executable, str(script)]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stderr[-3000:] + celery_worker_process.log()[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("search finished - front:")
    answered = json.loads(lines[-1].replace("'", '"'))

    job = SearchJob.objects.get(owner=alice)
    assert job.name == "from a script" and job.status == "finished"
    # The downloaded bundle's predict.py on the same five rows prints the same predictions.
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(tmp_path / "model.zip") as bundle:
        bundle.extractall(folder)
    with open(breast_cancer_csv, newline="") as handle:
        rows = list(csv.reader(handle))[:6]
    with open(tmp_path / "five.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    command = [sys.executable, "predict.py", str(tmp_path / "five.csv")]
    printed = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout.split()
    assert printed[0] == "prediction" and len(answered) == 5
    assert [str(p) for p in answered] == printed[1:]

    # Its probabilities are the bundle's ONNX model's, through predict.py's own encoding.
    import numpy as np
    import requests

    from nas_engine import runtime

    trial = job.trials.get(number=job.recommended_number)
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    body = requests.post(
        f"{live_server_url}/api/v1/trials/{trial.pk}/predict/",
        json={"rows": records},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    prep = json.loads((folder / "preprocessing.json").read_text())
    logits = runtime._run_model(runtime.encode_rows(records, prep), folder, None)
    expected = runtime.softmax(np.asarray(logits, dtype=np.float64))
    got = np.array([[p[label] for label in prep["target"]["labels"]] for p in body["probabilities"]])
    assert body["predictions"] == answered and np.abs(got - expected).max() < 1e-9
