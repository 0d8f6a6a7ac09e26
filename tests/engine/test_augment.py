"""Augmentation of training images: shifts move the picture by at most a few pixels and keep its
values, mirroring flips about half of a batch, draws follow the trainer's seed, and a search and
its refit train with the augmentation they were asked for (only on images)."""

import pytest
import torch

import nas_engine
from nas_engine.augment import Augmentation, augmentation_for
from nas_engine.errors import ConstraintError
from nas_engine.finalize import refit


def dot_batch(batch: int = 200, side: int = 8) -> torch.Tensor:
    """``batch`` grey side×side images, each black with one white pixel at (3, 2)."""
    images = torch.zeros(batch, 1, side, side)
    images[:, 0, 3, 2] = 1.0
    return images.reshape(batch, -1)


def dot_positions(flat: torch.Tensor, side: int = 8) -> list[tuple[int, int]]:
    images = flat.reshape(len(flat), side, side)
    return [tuple(torch.nonzero(image).tolist()[0]) if image.any() else None for image in images]


def test_a_shift_moves_the_picture_by_at_most_one_pixel_on_8x8_and_keeps_its_values():
    shifted = Augmentation("shift", (1, 8, 8)).apply(dot_batch(), torch.Generator().manual_seed(0))
    assert shifted.shape == (200, 64)
    assert sorted(set(shifted.flatten().tolist())) == [0.0, 1.0] and shifted.sum(dim=1).eq(1).all()
    moves = {(row - 3, col - 2) for row, col in dot_positions(shifted)}
    assert moves == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}  # all nine, nothing further


def test_larger_images_shift_further():
    shifted = Augmentation("shift", (1, 32, 32)).apply(dot_batch(400, 32), torch.Generator().manual_seed(0))
    moves = {spot[0] - 3 for spot in dot_positions(shifted, 32) if spot is not None}
    assert moves == set(range(-3, 5))  # up to 4 px each way; 4 px up takes the dot at row 3 out of view
    assert Augmentation("shift", (1, 32, 32)).pad == 4


def test_shift_flip_mirrors_about_half_of_the_batch():
    images = torch.zeros(400, 3, 8, 8)
    images[:, :, 4, 1] = 1.0  # a dot near the left edge, in every channel: shifts keep it in view
    flipped = Augmentation("shift_flip", (3, 8, 8)).apply(images.reshape(400, -1), torch.Generator().manual_seed(1))
    columns = flipped.reshape(400, 3, 8, 8).nonzero()[:, 3]
    right = (columns >= 5).sum().item() / 3
    assert 150 < right < 250 and len(columns) == 400 * 3 and ((columns <= 2) | (columns >= 5)).all()


def test_the_same_seed_draws_the_same_batch():
    augmentation = Augmentation("shift_flip", (1, 8, 8))
    first = augmentation.apply(dot_batch(), torch.Generator().manual_seed(5))
    again = augmentation.apply(dot_batch(), torch.Generator().manual_seed(5))
    other = augmentation.apply(dot_batch(), torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_augmentation_needs_images_and_a_known_mode():
    assert augmentation_for("none", None) is None
    with pytest.raises(ConstraintError, match="do not form an image"):
        augmentation_for("shift", None)
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'"):
        augmentation_for("blur", (1, 8, 8))
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'"):
        nas_engine.SearchConfig(target="label", augment="blur")


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    from sklearn.datasets import load_digits

    path = tmp_path_factory.mktemp("digits") / "digits.csv"
    frame = load_digits(as_frame=True).frame.iloc[:400]
    frame.to_csv(path, index=False)
    return nas_engine.prepare_data(path, target="target", seed=0)


def small_search(data, augment: str) -> nas_engine.SearchResult:
    config = nas_engine.SearchConfig(
        target="target", budget_seconds=60, max_trials=1, max_epochs=2, seed=0, augment=augment, cv_folds=1
    )
    return nas_engine.run_search(config, data)


def test_a_search_trains_with_its_augmentation_and_its_seed_repeats_it(digits_data):
    plain, shifted, again = (small_search(digits_data, mode) for mode in ("none", "shift", "shift"))
    assert (plain.augment, shifted.augment) == ("none", "shift")
    assert shifted.trials[0].architecture == plain.trials[0].architecture  # the same network, trained otherwise
    assert shifted.trials[0].metrics["val_loss"] != plain.trials[0].metrics["val_loss"]
    assert shifted.trials[0].metrics["val_loss"] == again.trials[0].metrics["val_loss"]


def test_a_refit_trains_with_the_augmentation_it_is_given(digits_data):
    arch = small_search(digits_data, "none").trials[0].architecture
    _, plain = refit(arch, digits_data, epochs=1, seed=0)
    _, shifted = refit(arch, digits_data, epochs=1, seed=0, augment="shift")
    _, again = refit(arch, digits_data, epochs=1, seed=0, augment="shift")
    assert shifted["val_loss"] != plain["val_loss"] and shifted == again


def test_a_search_on_a_table_refuses_augmentation(cancer_data):
    config = nas_engine.SearchConfig(target="diagnosis", budget_seconds=5, max_trials=1, augment="shift")
    with pytest.raises(ConstraintError, match="do not form an image"):
        nas_engine.run_search(config, cancer_data)
