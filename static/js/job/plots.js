// The two live plots: the Pareto front (score against cost, greyed outside the explorer's limits)
// and the best validation score found so far against search time.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const D = window.NasJob.describe;
  const GREY = "#d0d7de";
  const BLUE = "#1f6feb";
  const GOLD = "#d29922";
  const CONFIG = { displaylogo: false, responsive: true };
  let onPick = () => {};

  // The metric's own values on the y axis, turned upside down where lower is better, so the best
  // models are always at the top.
  function scoreAxis() {
    const label = D.scoreName();
    return {
      title: { text: label.charAt(0).toUpperCase() + label.slice(1) + " (validation" + (D.SCORE.higher ? "" : ", lower is better") + ")" },
      autorange: D.SCORE.higher ? true : "reversed",
    };
  }

  function points(trials, store, extra) {
    const x = store.xCost;
    return Object.assign({
      x: trials.map((t) => t.costs[x]), y: trials.map((t) => D.shown(t.score)), customdata: trials.map((t) => t.id),
      text: trials.map((t) => D.hover(t, store.task, store.front.has(t.id))),
      hovertemplate: "%{text}<extra></extra>", mode: "markers", type: "scatter",
    }, extra);
  }

  function marker(trials, store, size, extra) {
    const m = Object.assign({ size: size, color: "#8c959f", symbol: trials.map((t) => (t.status === "pruned" ? "circle-open" : "circle")) }, extra);
    if (store.colourCost) {
      Object.assign(m, {
        color: trials.map((t) => t.costs[store.colourCost]), colorscale: "Viridis", showscale: true,
        colorbar: { title: { text: D.COSTS[store.colourCost].label }, tickformat: "~s" },
      });
    }
    return m;
  }

  function single(t, store, name, style) {
    return points(t ? [t] : [], store, { name: name, marker: style });
  }

  // A dashed horizontal line at a default gradient-boosting model's score on the same rows, across
  // the plotted costs: is the search above it?
  function referenceLine(store, costs) {
    const reference = store.job.reference;
    const xs = costs.filter((v) => typeof v === "number" && v > 0);
    if (!reference || !xs.length) return null;
    const ends = [Math.min(...xs) / 1.5, Math.max(...xs) * 1.5];
    return {
      x: ends, y: [D.shown(reference.score), D.shown(reference.score)], mode: "lines", type: "scatter",
      name: "default gradient boosting (" + D.number(D.shown(reference.score)) + ")",
      line: { dash: "dash", color: "#57606a", width: 1.5 },
      hovertemplate: "a default gradient-boosting model: " + D.number(D.shown(reference.score), 4) + "<extra></extra>",
    };
  }

  function pareto(store, explorer) {
    const x = store.xCost;
    const models = store.models().filter((t) => t.costs[x] !== null);
    const fits = models.filter(explorer.fits);
    const excluded = models.filter((t) => !explorer.fits(t));
    const onFront = models.filter((t) => store.front.has(t.id)).sort((a, b) => a.costs[x] - b.costs[x]);
    const frontFits = fits.filter((t) => store.front.has(t.id));
    const best = explorer.best();
    const traces = [
      { x: onFront.map((t) => t.costs[x]), y: onFront.map((t) => D.shown(t.score)), mode: "lines", type: "scatter",
        name: "Pareto front", hoverinfo: "skip", line: { shape: "hv", color: BLUE, width: 1.5 } },
      points(fits.filter((t) => !store.front.has(t.id)), store, {
        name: "trials (open: pruned early)", marker: marker(fits.filter((t) => !store.front.has(t.id)), store, 9) }),
      points(frontFits, store, { name: "on the front", marker: marker(frontFits, store, 12, { color: BLUE, line: { color: BLUE, width: 2 } }) }),
      points(excluded, store, { name: "outside your limits", marker: { size: 9, color: GREY, line: { color: "#afb8c1", width: 1 } } }),
      single(best, store, "best that fits", { size: 20, symbol: "star", color: GOLD, line: { color: "#7d4e00", width: 1 } }),
      single(store.byNumber(store.job.knee), store, "knee", { size: 18, symbol: "diamond-open", line: { width: 2, color: "#8250df" } }),
      single(store.trials.get(store.chosenId), store, "chosen", { size: 22, symbol: "circle-open", line: { width: 3, color: "#cf222e" } }),
    ];
    const reference = referenceLine(store, models.map((t) => t.costs[x]));
    if (reference) traces.push(reference);
    const layout = {
      margin: { t: 20, r: 20, b: 50, l: 60 }, height: 380,
      xaxis: { title: { text: D.COSTS[x].label + " (less is better)" }, type: "log" },
      yaxis: scoreAxis(), legend: { orientation: "h", y: -0.25 },
    };
    const plot = document.getElementById("pareto");
    Plotly.react(plot, traces, layout, CONFIG);
    plot.dataset.points = String(models.length);
    plot.dataset.excluded = String(excluded.length);
    plot.dataset.bestFit = best ? String(best.number) : "";
    plot.dataset.reference = reference ? String(store.job.reference.score) : "";
    if (!plot.dataset.bound) {
      plot.on("plotly_click", (event) => {
        const id = event.points[0].customdata;
        if (id !== undefined) onPick(id);
      });
      plot.dataset.bound = "1";
    }
  }

  // Running maximum of the validation score over the order the trials finished in.
  function bestSoFar(store) {
    const timed = store.models().filter((t) => t.elapsed_seconds !== null && t.elapsed_seconds !== undefined)
      .sort((a, b) => a.elapsed_seconds - b.elapsed_seconds);
    const steps = [];
    timed.forEach((t) => {
      if (!steps.length || t.score > steps[steps.length - 1].score) steps.push(t);
    });
    if (steps.length) steps.push(Object.assign({}, steps[steps.length - 1], { elapsed_seconds: timed[timed.length - 1].elapsed_seconds }));
    const traces = [
      { x: timed.map((t) => t.elapsed_seconds), y: timed.map((t) => D.shown(t.score)), mode: "markers", type: "scatter",
        name: "each trial", marker: { size: 6, color: "#8c959f" }, customdata: timed.map((t) => t.id),
        text: timed.map((t) => "trial " + t.number + " at " + D.seconds(t.elapsed_seconds)),
        hovertemplate: "%{text}: %{y:.3f}<extra></extra>" },
      { x: steps.map((t) => t.elapsed_seconds), y: steps.map((t) => D.shown(t.score)), mode: "lines", type: "scatter",
        name: "best so far", line: { shape: "hv", color: BLUE, width: 2 }, hoverinfo: "skip" },
    ];
    const layout = {
      margin: { t: 20, r: 20, b: 50, l: 60 }, height: 300,
      xaxis: { title: { text: "Search time (s)" }, rangemode: "tozero" },
      yaxis: scoreAxis(), legend: { orientation: "h", y: -0.3 },
    };
    const plot = document.getElementById("best-curve");
    Plotly.react(plot, traces, layout, CONFIG);
    plot.dataset.points = String(timed.length);
    plot.dataset.best = steps.length ? String(steps[steps.length - 1].score) : "";
  }

  function render(store, explorer) {
    pareto(store, explorer);
    bestSoFar(store);
  }

  window.NasJob.plots = { render, onPick: (handler) => { onPick = handler; } };
})();
