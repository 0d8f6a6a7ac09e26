"""A trial's model on its job's held-out test split (confusion matrix or residuals), for the comparison
panel of the job page; computed once, then kept on the trial."""

from __future__ import annotations

import json

import nas_engine
from webapp.searches.bundles import load_trial_model, weights_key  # one loader for downloads and evaluations
from webapp.searches.models import Trial

SPLIT_CHANGED = (
    "The test split of this search cannot be rebuilt: the dataset or the data preparation changed since "
    "it ran. Re-run the search to compare its models on a test split."
)


def cached_test_evaluation(trial: Trial) -> dict | None:
    """The trial's kept test-split evaluation when it was computed from its current weights, else None;
    cheap (no model is loaded), for a web request to answer from."""
    cached = trial.test_evaluation or {}
    return cached["result"] if cached.get("weights") == weights_key(trial) and "result" in cached else None


def trial_test_evaluation(*, trial: Trial) -> dict:
    """The trial's test-split evaluation (see ``nas_engine.evaluate_test_split``), cached on the trial
    with the key of the weights it was computed from (``bundles.weights_key``): once the refit
    replaces them, it is computed again.

    The split is rebuilt as the search made it: the same CSV, target, task and seed through
    ``prepare_data``. Its fitted preprocessing must equal the one the job saved, or the rows
    could differ from the search's test split, and that is refused rather than guessed.

    Raises:
        NasError: The trial has no model, its weights are gone, or the split cannot be rebuilt.
    """
    key = weights_key(trial)  # before loading: weights replaced meanwhile leave a key that no longer matches
    cached = trial.test_evaluation or {}
    if cached.get("weights") == key and "result" in cached:
        return cached["result"]
    model = load_trial_model(trial, scored=True)  # not one trained on the test rows too
    job = trial.job
    data = nas_engine.prepare_data(job.dataset.file.path, **job.to_config().data_settings())
    if json.loads(json.dumps(data.preprocessing)) != job.preprocessing:  # as the JSON field stores it
        raise nas_engine.NasError(SPLIT_CHANGED)
    result = nas_engine.evaluate_test_split(model, data)
    trial.test_evaluation = {"weights": key, "result": result}
    Trial.objects.filter(pk=trial.pk).update(test_evaluation=trial.test_evaluation)
    return result
