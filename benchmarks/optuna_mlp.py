"""The Optuna-TPE-tuned scikit-learn MLP that search_quality and tabular_suite pit nas against: one
search space and one model, so both benchmarks measure against the same rival."""

from __future__ import annotations


def suggest(trial) -> dict:
    """Draw one MLP configuration from ``trial`` (an ``optuna.Trial``)."""
    return {
        "layers": trial.suggest_int("layers", 1, 3),
        "width": trial.suggest_int("width", 16, 512, log=True),
        "activation": trial.suggest_categorical("activation", ["relu", "tanh"]),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
    }


def model(task: str, params: dict, *, seed: int, max_iter: int):
    """scikit-learn's MLPClassifier/MLPRegressor with ``params`` (as ``suggest`` draws them)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    estimator = MLPClassifier if task == "classification" else MLPRegressor
    return estimator(
        hidden_layer_sizes=(params["width"],) * params["layers"],
        activation=params["activation"],
        alpha=params["alpha"],
        learning_rate_init=params["learning_rate"],
        max_iter=max_iter,
        random_state=seed,
    )
