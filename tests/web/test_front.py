"""The live Pareto front kept by services.trial_record: each new trial is compared with the front
only (not with every trial), and the front must still be exactly what a full recomputation gives."""

import numpy as np
import pytest

import nas_engine
from webapp.searches import services
from webapp.searches.models import SearchJob, Trial

STATUSES = (
    [nas_engine.TrialStatus.COMPLETED] * 6 + [nas_engine.TrialStatus.PRUNED] * 3 + [nas_engine.TrialStatus.FAILED]
)


def expected_front(job: SearchJob) -> set[int]:
    """The front as the engine defines it, computed here from every trial: completed models (pruned
    ones while none is completed), score up and each cost down, vectors with a missing cost left out."""
    costs = [name for name in job.objectives if name != "score"]
    scored = [t for t in job.trials.all() if t.score is not None]
    candidates = [t for t in scored if t.status == "completed"] or [t for t in scored if t.status == "pruned"]
    vectors = [None if any(getattr(t, c) is None for c in costs) else (-t.score, *(getattr(t, c) for c in costs))
               for t in candidates]  # fmt: skip
    return {candidates[i].pk for i in nas_engine.pareto_front_nd(vectors)}


def random_result(number: int, rng: np.random.Generator, *, space: str = "mlp") -> nas_engine.TrialResult:
    status = STATUSES[int(rng.integers(len(STATUSES)))] if number > 2 else nas_engine.TrialStatus.PRUNED
    trained = status is not nas_engine.TrialStatus.FAILED
    params = int(rng.choice([50, 100, 200, 400, 800]))  # few values: ties and equal vectors happen
    latency = None if rng.random() < 0.1 else float(rng.choice([0.1, 0.2, 0.4]))
    return nas_engine.TrialResult(
        number=number, status=status, architecture={"space": space, "layers": []}, arch_hash=f"h{number}",
        metrics={"score": float(rng.choice([0.8, 0.85, 0.9, 0.95]))} if trained else {},
        costs=nas_engine.Costs(params=params, flops=params, latency_ms=latency, size_bytes=4 * params),
        train_seconds=0.1,
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_trial_leaves_the_front_a_full_recomputation_would_give(queued_job, seed):
    job = queued_job
    job.objectives = ["score", "params", "latency_ms"]
    job.save(update_fields=["objectives"])
    rng = np.random.default_rng(seed)
    changes = 0
    for number in range(80):
        before = set(job.trials.filter(on_front=True).values_list("id", flat=True))
        trial = services.trial_record(job=job, result=random_result(number, rng))
        on_front = set(job.trials.filter(on_front=True).values_list("id", flat=True))
        assert on_front == expected_front(job), f"trial {number}"
        assert trial.on_front == (trial.pk in on_front)
        changes += on_front != before
    assert changes >= 5  # the front moved: pruned-only at first, then completed models pushing others off


@pytest.mark.django_db
def test_a_deleted_ensemble_row_gives_back_the_front_it_held(queued_job):
    """An interrupted job's ensemble row is dropped on resume: trials it dominated return to the front."""
    job = queued_job
    rng = np.random.default_rng(3)
    for number in range(30):
        services.trial_record(job=job, result=random_result(number, rng))
    ensemble = nas_engine.TrialResult(
        number=30, status=nas_engine.TrialStatus.COMPLETED, architecture={"space": "ensemble", "members": []},
        arch_hash="ensemble", metrics={"score": 1.0}, train_seconds=0.0,
        costs=nas_engine.Costs(params=1, flops=1, latency_ms=0.01, size_bytes=4),
    )  # fmt: skip
    services.trial_record(job=job, result=ensemble)
    assert list(job.trials.filter(on_front=True).values_list("number", flat=True)) == [30]
    services._kept_trials(job)  # what a resumed attempt builds on
    assert not job.trials.filter(number=30).exists()
    assert set(job.trials.filter(on_front=True).values_list("id", flat=True)) == expected_front(job) != set()
    assert Trial.objects.filter(job=job, on_front=True).count() >= 1
