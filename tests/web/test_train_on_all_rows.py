"""The worker's last step, training the recommended model again on every row, never costs the job its
model: when it fails, the failure is logged and the refit on train+validation stays what is served."""

import logging

import pytest

import nas_engine
from webapp.searches import services
from webapp.searches.models import Trial

pytestmark = pytest.mark.django_db


def test_a_failed_training_on_every_row_is_logged_and_the_refit_stays_served(queued_job, caplog):
    choice = nas_engine.TrialResult(
        number=0, status=nas_engine.TrialStatus.COMPLETED, architecture={"space": "mlp", "layers": []},
        arch_hash="a", metrics={"score": 0.9}, costs=nas_engine.Costs(params=1, flops=1, latency_ms=None,
        size_bytes=4), train_seconds=1.0,
    )  # fmt: skip
    Trial.objects.create(
        job=queued_job, number=0, status="completed", architecture=choice.architecture, arch_hash="a",
        params=1, flops=1, size_bytes=4, final_weights_path="/refit.pt",
    )  # fmt: skip
    no_refit = nas_engine.FinalModels(models=())  # refit_on_all_rows raises: trial 0 has no refitted model
    with caplog.at_level(logging.ERROR, logger="webapp.searches.services"):
        services.train_on_all_rows(queued_job, choice, no_refit, data=None, lease=None)
    trial = queued_job.trials.get(number=0)
    assert trial.served_weights_path == "" and trial.served_weights == "/refit.pt"
    assert "training trial 0 on every row failed; its refit is served" in caplog.text
