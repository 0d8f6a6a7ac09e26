// Words for a trial: its architecture in one line, its costs in human units, its metrics.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const U = window.NasUnits;

  const COSTS = {
    params: { label: "Parameters", human: U.params },
    flops: { label: "FLOPs", human: U.flops },
    latency_ms: { label: "Latency", human: U.milliseconds },
    size_bytes: { label: "Model size", human: U.bytes },
    memory_bytes: { label: "Peak memory", human: U.bytes },
  };
  const METRICS = {
    accuracy: "accuracy", balanced_accuracy: "balanced accuracy", f1_macro: "F1 (macro)", roc_auc: "ROC AUC",
    log_loss: "log loss", r2: "R²", rmse: "RMSE", mae: "MAE", mape: "MAPE", val_loss: "loss",
  };
  // The search's metric (data-metric on #job): a score is its value, or minus it where lower is better.
  const root = document.getElementById("job");
  const SCORE = {
    label: (root && root.dataset.metricLabel) || "accuracy",
    higher: !root || root.dataset.higherIsBetter !== "0",
  };

  function scoreName() { return SCORE.label; }

  // A trial's score as the metric's own value (RMSE 3.2 rather than a score of -3.2).
  function shown(score) {
    return typeof score === "number" ? (SCORE.higher ? score : -score) : score;
  }

  function number(value, digits) {
    if (value === null || value === undefined || typeof value !== "number") return "–";
    return Number(value.toFixed(digits === undefined ? 3 : digits)).toLocaleString("en");
  }

  // Sub-second times keep a decimal: most small models train in under a second.
  function seconds(value) {
    if (value === null || value === undefined) return "–";
    return value < 10 ? number(value, 1) + " s" : U.duration(value);
  }

  function cost(name, value) {
    return COSTS[name] ? COSTS[name].human(value) : number(value);
  }

  // "int8 of trial 3" / "pruned 50 % of trial 3", for a compressed variant.
  function compression(c) {
    const kind = c.kind === "int8" ? "int8" : "pruned " + Math.round(c.ratio * 100) + " %";
    return kind + " of trial " + c.parent;
  }

  function architecture(arch) {
    if (!arch) return "";
    if (arch.compression) return compression(arch.compression) + " · " + architecture({ ...arch, compression: null });
    if (arch.space === "ensemble") return "ensemble of trials " + arch.members.join(", ");
    if (arch.space === "trees") return "boosted trees, up to " + arch.rounds + " rounds of " + arch.leaves + " leaves";
    if (arch.layers && !arch.layers.length) return "linear model (no hidden layer)";
    if (arch.layers) return "MLP " + arch.layers.map((l) => l.units + " " + l.activation).join(" → ");
    if (arch.stages) return "CNN, " + arch.stages.length + " convolution stage" + (arch.stages.length === 1 ? "" : "s");
    return arch.space || "";
  }

  // "12 k params · 12 k FLOPs · 150 µs · 48 KB"
  function costs(t) {
    return Object.keys(COSTS).map((name) => cost(name, t.costs[name])).join(" · ");
  }

  // Validation metrics worth reading, in a fixed order.
  function metrics(values) {
    return Object.keys(METRICS).filter((k) => typeof values[k] === "number")
      .map((k) => METRICS[k] + " " + number(values[k])).join(" · ");
  }

  // Where the trial's model trained (the worker's device: "cpu", "cuda (NVIDIA ...)"), when recorded.
  function trainedOn(t) {
    const device = t.metrics && t.metrics.trained_on;
    return device ? " on " + device : "";
  }

  function hover(t, task, front) {
    const lines = [
      "<b>Trial " + t.number + "</b> (" + t.status + (front ? ", on the front" : "") + ")",
      architecture(t.architecture),
      metrics(t.metrics) || scoreName() + " " + number(shown(t.score)),
      costs(t),
      "trained in " + seconds(t.train_seconds) + trainedOn(t) + " · found at " + seconds(t.elapsed_seconds),
    ];
    return lines.filter(Boolean).join("<br>");
  }

  window.NasJob.describe = { COSTS, METRICS, SCORE, scoreName, shown, number, seconds, cost, architecture, costs, metrics, trainedOn, hover };
})();
