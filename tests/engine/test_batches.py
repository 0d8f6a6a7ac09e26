"""An image set stays uint8 from upload to training: ``prepare_data`` gives ``PixelRows``, which read
as the standardised float32 matrix a batch at a time, and a network trained from them is the network
trained from that matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_engine.batches import Batches, PixelRows, concat_rows, take_rows
from nas_engine.evaluator import Trainer, TrainSettings, predict_raw
from nas_engine.finalize import refit
from nas_engine.spaces import make_space


@pytest.fixture(scope="module")
def image_data(small_image_data):
    return small_image_data


def test_an_image_sets_splits_hold_uint8_pixels_and_read_as_their_standardised_floats(image_data):
    X = image_data.X_train
    assert isinstance(X, PixelRows) and X.raw.dtype == np.uint8
    assert X.nbytes == len(X) * 3 * 8 * 8  # a byte a value, not the float matrix's four
    assert X.shape == (len(X), 192) and X.dtype == np.float32 and len(X) == len(image_data.y_train)
    mean = np.array([f["mean"] for f in image_data.preprocessing["features"]])
    std = np.array([f["std"] for f in image_data.preprocessing["features"]])
    whole = np.asarray(X)
    assert whole.dtype == np.float32
    np.testing.assert_array_equal(whole, ((X.raw.astype(np.float64) - mean) / std).astype(np.float32))
    rows = np.array([5, 0, 17, 5])
    np.testing.assert_array_equal(X[rows], whole[rows])
    np.testing.assert_array_equal(X[torch.tensor(rows)], whole[rows])
    np.testing.assert_array_equal(X[3:9], whole[3:9])
    np.testing.assert_array_equal(X[4], whole[4])
    np.testing.assert_array_equal(X[:, 7], whole[:, 7])


def test_splits_concatenate_and_subset_without_becoming_float(image_data):
    both = concat_rows([image_data.X_train, image_data.X_val])
    assert isinstance(both, PixelRows) and len(both) == len(image_data.X_train) + len(image_data.X_val)
    np.testing.assert_array_equal(
        np.asarray(both), np.concatenate([np.asarray(image_data.X_train), np.asarray(image_data.X_val)])
    )
    part = take_rows(both, np.arange(0, len(both), 3))
    assert isinstance(part, PixelRows)
    np.testing.assert_array_equal(np.asarray(part), np.asarray(both)[::3])
    other = PixelRows(image_data.X_val.raw, image_data.X_val.mean + 1, image_data.X_val.std)
    mixed = concat_rows([image_data.X_train, other])  # another fit: no shared standardisation, made float
    assert isinstance(mixed, np.ndarray) and mixed.dtype == np.float32


def test_pixel_rows_refuse_what_they_cannot_stand_for():
    with pytest.raises(ValueError, match="uint8"):
        PixelRows(np.zeros((3, 4), dtype=np.float32), np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="one mean and std"):
        PixelRows(np.zeros((3, 4), dtype=np.uint8), np.zeros(5), np.ones(5))


def _train(image_data, X, seed: int = 4):
    space = make_space("cnn", n_inputs=image_data.n_features, image_shape=image_data.image_shape)
    arch = space.sample(np.random.default_rng(1))
    torch.manual_seed(seed)
    model = space.build_model(arch, image_data.n_features, image_data.n_outputs)
    trainer = Trainer(
        model,
        X_train=X,
        y_train=image_data.y_train,
        task="classification",
        settings=TrainSettings(batch_size=32),
        seed=seed,
        validation=(image_data.X_val, image_data.y_val),
        patience=5,
    )
    trainer.train(until_epoch=2)
    return trainer.finish()


def test_a_network_trained_batch_by_batch_from_pixels_is_the_one_trained_from_the_float_matrix(image_data):
    streamed = _train(image_data, image_data.X_train)
    from_matrix = _train(image_data, np.asarray(image_data.X_train))
    for name, weight in streamed.model.state_dict().items():
        torch.testing.assert_close(weight, from_matrix.model.state_dict()[name], rtol=0, atol=0)
    assert streamed.metrics["val_loss"] == from_matrix.metrics["val_loss"]
    np.testing.assert_array_equal(
        predict_raw(streamed.model, image_data.X_test), predict_raw(streamed.model, np.asarray(image_data.X_test))
    )


def test_a_refit_on_train_and_validation_trains_from_pixels(image_data):
    space = make_space("cnn", n_inputs=image_data.n_features, image_shape=image_data.image_shape)
    arch = space.sample(np.random.default_rng(1))
    model, metrics = refit(arch, image_data, epochs=1, seed=3)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["val_loss"])


def test_batches_of_a_matrix_index_its_tensor_and_batches_of_pixels_make_floats(image_data):
    idx = torch.tensor([3, 1, 2])
    matrix = np.asarray(image_data.X_train)
    np.testing.assert_array_equal(Batches(matrix)[idx].numpy(), matrix[[3, 1, 2]])
    np.testing.assert_array_equal(Batches(image_data.X_train)[idx].numpy(), matrix[[3, 1, 2]])
    assert len(Batches(image_data.X_train)) == len(matrix)
    np.testing.assert_array_equal(Batches(image_data.X_train).numpy(), matrix)


def test_a_cross_validated_image_trial_keeps_each_folds_pixels_uint8(image_data):
    from nas_engine.evaluator import CrossValidatedTrainer

    space = make_space("cnn", n_inputs=image_data.n_features, image_shape=image_data.image_shape)
    arch = space.sample(np.random.default_rng(1))
    X = concat_rows([image_data.X_train, image_data.X_val])
    y = np.concatenate([image_data.y_train, image_data.y_val])
    trainer = CrossValidatedTrainer(
        lambda: space.build_model(arch, image_data.n_features, image_data.n_outputs),
        X=X, y=y, folds=3, task="classification", settings=TrainSettings(batch_size=32), seed=0, patience=2,
    )  # fmt: skip
    assert all(isinstance(t.X.rows, PixelRows) and isinstance(t.validation[0], PixelRows) for t in trainer.trainers)
    trainer.train(until_epoch=1)
    outcome = trainer.finish()
    assert outcome.metrics["cv_folds"] == 3 and outcome.out_of_fold.shape == (len(y), 2)
