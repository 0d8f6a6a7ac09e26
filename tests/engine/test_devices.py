"""Where networks train: ``NAS_DEVICE`` (auto, cpu, cuda, cuda:N), the device each trial records,
and the GPU path itself, run where CUDA is present and skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nas_engine
from nas_engine import devices
from nas_engine.config import SearchConfig
from nas_engine.evaluator import Trainer, TrainSettings, measure_latency_ms, predict_raw
from nas_engine.results import TrialStatus
from nas_engine.search import run_search
from nas_engine.spaces import make_space

CUDA = torch.cuda.is_available()


@pytest.fixture
def device_env(monkeypatch):
    """Set NAS_DEVICE for one test; the process's choice is read afresh before and after."""

    def choose(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(devices.ENV, raising=False)
        else:
            monkeypatch.setenv(devices.ENV, value)
        devices.training_device.cache_clear()

    yield choose
    devices.training_device.cache_clear()


@pytest.fixture(scope="module")
def image_data(small_image_data):
    return small_image_data


def test_auto_picks_the_gpu_when_torch_sees_one_and_the_cpu_otherwise(device_env):
    device_env(None)
    assert devices.training_device().type == ("cuda" if CUDA else "cpu")
    device_env("auto")
    assert devices.training_device().type == ("cuda" if CUDA else "cpu")
    device_env(" CPU ")
    assert devices.training_device() == torch.device("cpu")


def test_an_unknown_device_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"NAS_DEVICE='gpu' is not a device; use one of: auto, cpu, cuda, cuda:N"):
        devices.parse_device("gpu")
    with pytest.raises(ValueError, match="not a device"):
        devices.parse_device("cuda:x")


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_asking_for_a_gpu_on_a_machine_without_one_says_so():
    with pytest.raises(ValueError, match=r"NAS_DEVICE=cuda asks for a GPU, but torch .* sees none on this machine"):
        devices.parse_device("cuda")


def test_the_cpu_trains_in_float32_without_loss_scaling():
    cpu = torch.device("cpu")
    assert devices.amp_dtype(cpu) is None and not devices.grad_scaler(cpu).is_enabled()
    assert devices.describe(cpu) == "cpu"
    assert devices.module_device(torch.nn.Identity()) == cpu


def test_each_trained_trial_records_where_it_trained(device_env, image_data):
    device_env("cpu")
    result = run_search(
        SearchConfig(target="label", budget_seconds=30, max_trials=2, max_epochs=2, patience=2), image_data
    )
    trained = [t for t in result.trials if t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED)]
    assert trained and all(t.metrics["trained_on"] == "cpu" for t in trained)


@pytest.mark.skipif(not CUDA, reason="no CUDA GPU on this machine: the GPU path runs where there is one")
def test_on_a_gpu_a_network_trains_there_in_mixed_precision_and_comes_back_to_the_cpu(device_env, image_data):
    device_env("cuda")
    space = make_space("cnn", n_inputs=image_data.n_features, image_shape=image_data.image_shape)
    model = space.build_model(space.sample(np.random.default_rng(0)), image_data.n_features, image_data.n_outputs)
    trainer = Trainer(
        model,
        X_train=image_data.X_train,
        y_train=image_data.y_train,
        task="classification",
        settings=TrainSettings(batch_size=32),
        seed=0,
        validation=(image_data.X_val, image_data.y_val),
        patience=3,
    )
    assert trainer.device.type == "cuda" and devices.amp_dtype(trainer.device) in (torch.bfloat16, torch.float16)
    assert devices.module_device(trainer.model).type == "cuda"
    trainer.train(until_epoch=3)
    outcome = trainer.finish()
    assert outcome.device.startswith("cuda (") and devices.module_device(outcome.model).type == "cpu"
    assert np.isfinite(outcome.metrics["val_loss"]) and outcome.metrics["epochs"] == 3
    outputs = predict_raw(outcome.model, image_data.X_test)  # on the CPU, as the export and serving run it
    assert outputs.shape == (len(image_data.y_test), 2) and np.isfinite(outputs).all()
    assert measure_latency_ms(outcome.model, image_data.n_features, runs=3, warmup=1) > 0


@pytest.mark.skipif(not CUDA, reason="no CUDA GPU on this machine: the GPU path runs where there is one")
def test_a_search_on_a_gpu_records_the_gpu_and_measures_latency_on_the_cpu(device_env, image_data):
    device_env("auto")
    result = run_search(
        SearchConfig(target="label", budget_seconds=60, max_trials=3, max_epochs=3, patience=2), image_data
    )
    trained = [t for t in result.trials if t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED)]
    assert trained and all(t.metrics["trained_on"].startswith("cuda (") for t in trained)
    assert all(t.costs.latency_ms > 0 for t in trained) and result.best is not None


def test_a_device_measures_its_training_speed_against_the_reference_machine():
    speed = devices.measure_speed(torch.device("cpu"), seconds=0.05)
    assert set(speed) == {"mlp", "cnn"} and all(0 < factor < 100 for factor in speed.values())
    assert torch.get_num_threads() >= 1  # the worker's own thread setting is given back


def test_faster_workers_buy_more_models_in_the_same_budget(cancer_data):
    shape = nas_engine.DataShape(rows=569, n_inputs=cancer_data.n_features, n_outputs=2)
    config = SearchConfig(target="diagnosis", budget_seconds=60)
    reference = nas_engine.estimate_search(config, shape)
    assert nas_engine.estimate_search(config, shape, speed=1.0) == reference
    faster = nas_engine.estimate_search(config, shape, speed=4.0)
    slower = nas_engine.estimate_search(config, shape, speed=0.5)
    assert faster.seconds_per_trial == pytest.approx(reference.seconds_per_trial / 4, rel=0.01)
    assert slower.trials < reference.trials < faster.trials


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_a_search_told_to_use_a_missing_gpu_fails_its_trials_with_the_reason(device_env, image_data):
    device_env("cuda")
    with pytest.raises(nas_engine.NasError, match="trials failed in a row; last error: ValueError: NAS_DEVICE=cuda"):
        run_search(SearchConfig(target="label", budget_seconds=30, max_trials=5, max_epochs=1), image_data)
