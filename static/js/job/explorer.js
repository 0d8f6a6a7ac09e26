// Explore the front: log-scale sliders (1-2-5 stops, top = no limit) for parameters, FLOPs,
// latency and peak memory grey out what does not fit, name the best model that does, offer the knee point
// and the smallest model within one standard error, and say what a default gradient-boosting model scores.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const D = window.NasJob.describe;
  const U = window.NasUnits;
  const COSTS = ["params", "flops", "latency_ms", "memory_bytes"];
  let store = null;
  let handlers = { choose: () => {} };
  const stops = { params: [], flops: [], latency_ms: [], memory_bytes: [] };

  function limitWords(cost, value) {
    if (cost === "latency_ms") return "under " + U.milliseconds(value);
    return "at most " + D.cost(cost, value);
  }

  // Stops from a 1-2-5 value at or below the cheapest model up to the dearest one.
  function stopsFor(cost) {
    const values = store.models().map((t) => t.costs[cost]).filter((v) => typeof v === "number" && v > 0);
    if (!values.length) return [];
    const cheapest = Math.min(...values);
    const all = U.logStops(Math.pow(10, Math.floor(Math.log10(cheapest))), Math.max(...values));
    // Below the cheapest model one stop is enough (nothing fits there); the rest are useless.
    return all.filter((v, i) => v >= cheapest || i === all.length - 1 || all[i + 1] > cheapest);
  }

  function fits(t) {
    return COSTS.every((cost) => {
      const limit = store.limits[cost];
      return limit === null || (t.costs[cost] !== null && t.costs[cost] <= limit);
    });
  }

  // The best-scoring model within the limits; ties go to the cheaper one.
  function best() {
    if (!store) return null;
    const x = store.xCost;
    const candidates = store.models().filter(fits);
    candidates.sort((a, b) => b.score - a.score || (a.costs[x] || 0) - (b.costs[x] || 0) || a.number - b.number);
    return candidates[0] || null;
  }

  function renderSlider(cost) {
    const slider = document.getElementById("limit-" + cost);
    const output = document.getElementById("limit-" + cost + "-value");
    const list = stopsFor(cost);
    stops[cost] = list;
    let index = list.length;
    if (store.limits[cost] !== null) {
      index = list.findIndex((v) => v >= store.limits[cost]);
      if (index < 0) index = list.length;
      store.limits[cost] = index < list.length ? list[index] : null;
    }
    slider.max = String(list.length);
    slider.value = String(index);
    slider.disabled = list.length === 0;
    const words = store.limits[cost] === null ? "no limit" : limitWords(cost, store.limits[cost]);
    output.textContent = words;
    slider.setAttribute("aria-valuetext", words);
  }

  function render(current) {
    store = current;
    COSTS.forEach(renderSlider);
    const models = store.models();
    const fitting = models.filter(fits);
    const active = COSTS.filter((cost) => store.limits[cost] !== null);
    const limits = document.getElementById("explorer-limits");
    if (!active.length) {
      limits.textContent = "No limits: every model fits.";
    } else {
      const words = active.map((cost) => limitWords(cost, store.limits[cost])).join(", ");
      limits.textContent = words.charAt(0).toUpperCase() + words.slice(1) + ": " + fitting.length + " of " +
        models.length + " models fit.";
    }
    const top = best();
    const text = document.getElementById("explorer-best");
    const button = document.getElementById("explorer-choose");
    text.dataset.number = top ? String(top.number) : "";
    if (top) {
      text.textContent = "Best that fits: trial " + top.number + " — " + D.scoreName() + " " +
        D.number(D.shown(top.score)) + ", " + D.costs(top) + ".";
    } else {
      text.textContent = models.length ? "No model fits these limits; loosen one." : "No trained model yet.";
    }
    button.hidden = !top || top.id === store.chosenId;
    renderWhy(top);
    button.textContent = top ? "Choose trial " + top.number : "Choose this model";
    renderReference(top);
    renderKnee();
    renderSmallest();
  }

  // Why the chosen model (the red ring) is not the best that fits (the gold star), when they differ.
  function renderWhy(top) {
    const why = document.getElementById("explorer-why");
    const chosen = store.trials.get(store.chosenId);
    why.hidden = !top || !chosen || top.id === chosen.id;
    if (why.hidden) return;
    const recommended = chosen.number === store.job.recommended;
    let words = "The chosen model, trial " + chosen.number + ", is not the best that fits: ";
    if (!fits(chosen)) words += "it is outside the limits set here";
    else if (chosen.score < top.score) words += "it scores lower, at less cost";
    else words += "it scores as well";
    if (recommended) words += " (it was chosen for you: the highest validation score of the search)";
    why.textContent = words + ". Choose trial " + top.number + " to take the best that fits.";
  }

  // The honest reference: scikit-learn's HistGradientBoosting at its defaults, on the same rows.
  function renderReference(top) {
    const text = document.getElementById("explorer-reference");
    const reference = store.job.reference;
    text.hidden = !reference;
    if (!reference) return;
    text.dataset.score = String(reference.score);
    const where = reference.cv_folds > 1 ? reference.cv_folds + "-fold cross-validation" : "this split";
    let words = "A default gradient-boosting model scores " + D.number(D.shown(reference.score)) + " (" + D.scoreName() + ") on " + where;
    if (reference.capped) words += " (fit on a sample of " + D.number(reference.train_rows, 0) + " training rows)";
    const models = store.models();
    if (models.length) {
      const best = Math.max(...models.map((t) => t.score));
      words += best > reference.score ? "; the best model here beats it (" + D.number(D.shown(best)) + ")."
        : "; no model here beats it yet (best " + D.number(best) + ").";
    } else {
      words += ".";
    }
    text.textContent = words;
  }

  function renderSmallest() {
    const smallest = store.byNumber(store.job.smallest);
    const box = document.getElementById("smallest");
    box.hidden = !smallest || !store.hasModel(smallest);
    if (box.hidden) return;
    document.getElementById("smallest-number").textContent = smallest.number;
    document.getElementById("smallest-details").textContent = "— " + D.scoreName() + " " +
      D.number(D.shown(smallest.score)) + " at " + D.cost(store.xCost, smallest.costs[store.xCost]) + ".";
    document.getElementById("smallest-choose").hidden = smallest.id === store.chosenId;
  }

  function renderKnee() {
    const knee = store.byNumber(store.job.knee);
    const box = document.getElementById("knee");
    box.hidden = !knee || !store.hasModel(knee);
    if (box.hidden) return;
    document.getElementById("knee-number").textContent = knee.number;
    document.getElementById("knee-details").textContent = "— " + D.scoreName() + " " +
      D.number(D.shown(knee.score)) + " at " + D.cost(store.xCost, knee.costs[store.xCost]) + ".";
    document.getElementById("knee-choose").hidden = knee.id === store.chosenId;
  }

  function init(options) {
    handlers = options;
    COSTS.forEach((cost) => {
      document.getElementById("limit-" + cost).addEventListener("input", (event) => {
        const index = Number(event.target.value);
        store.limits[cost] = index >= stops[cost].length ? null : stops[cost][index];
        handlers.changed();
      });
    });
    document.getElementById("explorer-choose").addEventListener("click", () => {
      const top = best();
      if (top) handlers.choose(top.id);
    });
    document.getElementById("knee-choose").addEventListener("click", () => {
      const knee = store.byNumber(store.job.knee);
      if (knee) handlers.choose(knee.id);
    });
    document.getElementById("smallest-choose").addEventListener("click", () => {
      const smallest = store.byNumber(store.job.smallest);
      if (smallest) handlers.choose(smallest.id);
    });
  }

  window.NasJob.explorer = { init, render, fits: (t) => !store || fits(t), best };
})();
