"""The MODEL_CARD.md text shipped in every bundle: what the model is, how good, and its limits."""

from __future__ import annotations

from nas_engine.results import Costs


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_rows(metrics: dict, prefix: str = "") -> list[str]:
    # Callers nest groups ({"validation": {...}, "test": {...}}); show them as dotted names.
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key}.")
        else:
            rows.append(f"| {prefix}{key} | {_fmt(value)} |")
    return rows


def model_card(
    *, architecture: dict, layers: list[str], preprocessing: dict, metrics: dict, costs: Costs, dataset_name: str = ""
) -> str:
    """Render the model card as Markdown."""
    task, target = preprocessing["task"], preprocessing["target"]["name"]
    features = preprocessing["feature_columns"]
    metric_lines = "\n".join(_metric_rows(metrics))
    latency = "not measured" if costs.latency_ms is None else f"{costs.latency_ms:.3f} ms"
    classes = ""
    if task == "classification":
        classes = f"\nClasses: {', '.join(preprocessing['target']['labels'])}.\n"
    return f"""# Model card

A multi-layer perceptron found by NAS Studio's architecture search, predicting
**{target}** ({task}) from tabular data{f" (`{dataset_name}`)" if dataset_name else ""}.
{classes}
## Architecture

{chr(10).join(f"- {line}" for line in layers)}

## Metrics

Measured on data the model did not train on (validation split; test split where given).

| metric | value |
|---|---|
{metric_lines}

## Costs

- Parameters: {costs.params:,}
- FLOPs (multiply-adds per row): {costs.flops:,}
- Size (float32 weights): {costs.size_bytes:,} bytes
- Latency (1 row, 1 CPU thread): {latency}

## Inputs

Feature columns ({len(features)}): {", ".join(features)}.
Missing numbers are filled with the training median; categories not seen in training share
one "other" slot. The target column may be present in the input; it is ignored.

## Limits

- Trained on one dataset; accuracy on data from another source or period may be lower.
- Numbers that cannot be read are treated as missing rather than rejected.
- No fairness or robustness evaluation was done.

## How to run

```
pip install numpy onnxruntime
python predict.py INPUT.csv -o predictions.csv
```

`predictions.csv` has one column, `prediction`, one row per input row. Without onnxruntime,
`predict.py` falls back to `model.pt` with PyTorch.
"""
