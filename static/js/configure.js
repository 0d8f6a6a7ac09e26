// The new-search form: sliders for the limits and the budget, the detected task in words, the
// chosen strategy explained, and a live estimate of how many models fit the budget.
// Each slider only sets the plain number input beside it, which keeps the POSTed name and unit.
(function () {
  "use strict";
  const form = document.getElementById("search-form");
  if (!form || !window.NasUnits) return;
  const units = window.NasUnits;
  const NO_LIMIT = null;
  // Round durations in seconds, the budget slider's stops (the site's cap is added as the last one).
  const DURATIONS = [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2700,
    3600, 5400, 7200, 10800, 14400, 21600, 28800, 43200, 86400];
  const ESTIMATE_DELAY_MS = 300;
  const dirty = new Set(); // fields changed since the page loaded: their old server errors are stale
  const advanced = document.getElementById("advanced");

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function fieldBox(name) {
    return form.querySelector('.field[data-field="' + name + '"]');
  }

  // --- sliders -----------------------------------------------------------------------------

  function stopsFor(box) {
    const low = Number(box.dataset.low);
    const high = Number(box.dataset.high);
    if (box.dataset.stops === "log") return units.logStops(low, high).concat([NO_LIMIT]);
    const stops = DURATIONS.filter((s) => s >= low && s < high);
    return stops.concat([high]);
  }

  function describe(unit, value) {
    if (value === NO_LIMIT) return "no limit";
    return units[unit](value);
  }

  // The stop nearest to a value on a log scale; an empty value is "no limit" where there is one.
  function nearestStop(stops, raw) {
    if (raw === "") return stops[stops.length - 1] === NO_LIMIT ? stops.length - 1 : -1;
    const value = Number(raw);
    if (!(value > 0)) return 0;
    let best = 0;
    stops.forEach((stop, i) => {
      if (stop === NO_LIMIT) return;
      if (Math.abs(Math.log(stop / value)) < Math.abs(Math.log(stops[best] / value))) best = i;
    });
    return best;
  }

  function setUpSlider(box) {
    const input = box.querySelector(".exact input");
    const slider = box.querySelector('input[type="range"]');
    const text = box.querySelector(".slider-text");
    const raw = box.querySelector(".slider-row .muted output");
    const unit = box.dataset.unit;
    const stops = stopsFor(box);
    slider.max = String(stops.length - 1);

    // Show the real value (it may sit between stops when it came from the server or was typed).
    function show() {
      const value = input.value === "" ? NO_LIMIT : Number(input.value);
      let words = input.value !== "" && !Number.isFinite(value) ? input.value : describe(unit, value);
      if (value === NO_LIMIT && stops[stops.length - 1] !== NO_LIMIT) words = "not set";
      text.textContent = words;
      slider.setAttribute("aria-valuetext", words);
      if (raw) raw.textContent = input.value;
    }

    function fromInput() {
      const position = nearestStop(stops, input.value.trim());
      if (position >= 0) slider.value = String(position);
      show();
    }

    slider.addEventListener("input", () => {
      const stop = stops[Number(slider.value)];
      input.value = stop === NO_LIMIT ? "" : String(stop);
      show();
      changed(input.name);
    });
    input.addEventListener("input", fromInput);
    input.addEventListener("change", fromInput);

    // With the slider working, it takes the label and the number input steps aside.
    box.querySelector("label").htmlFor = slider.id;
    box.querySelector(".slider-row").hidden = false;
    box.querySelector(".exact").hidden = true;
    fromInput();
  }

  form.querySelectorAll(".field.slider").forEach(setUpSlider);

  // --- the target's task in words ----------------------------------------------------------

  const profile = readJson("dataset-profile");
  const target = form.elements.target;
  const task = form.elements.task;
  const taskHint = document.getElementById("task-hint");

  function number(value) {
    return Number(value).toLocaleString("en", { maximumSignificantDigits: 4 });
  }

  function taskWords(column) {
    if (column.suggested_task === "regression") {
      return "looks like regression: numbers from " + number(column.min) + " to " + number(column.max);
    }
    const examples = column.kind === "categorical" && column.unique <= 5 ? " (" + column.examples.join(", ") + ")" : "";
    return "looks like classification: " + column.unique + " classes" + examples;
  }

  function showTask() {
    if (!profile || !taskHint || !target) return;
    const column = profile.columns.find((c) => c.name === target.value);
    if (!column) return;
    let words = taskWords(column);
    if (task && task.value !== "auto" && task.value !== column.suggested_task) words += "; you chose " + task.value;
    if (column.missing) words += "; " + column.missing + " rows without a value are left out";
    taskHint.textContent = words;
  }

  // --- the metric suggested from the target ------------------------------------------------

  const metric = form.elements.metric;
  const metricHint = document.getElementById("metric-hint");
  const classWeights = form.elements.class_weights;
  let weightsTouched = false;
  if (classWeights) classWeights.addEventListener("change", () => { weightsTouched = true; });

  function showMetric() {
    if (!profile || !metricHint || !target || !metric) return;
    const column = profile.columns.find((c) => c.name === target.value);
    if (!column) return;
    const imbalanced = column.suggested_metric === "balanced_accuracy";
    metricHint.textContent = metric.value === "auto" ? "Suggested: " + column.metric_reason + "." : "";
    // Class weights come with the balanced metric, until the person sets them.
    if (classWeights && !weightsTouched && metric.value === "auto") classWeights.value = imbalanced ? "balanced" : "none";
  }

  // --- the strategy explained ---------------------------------------------------------------

  const descriptions = readJson("strategy-descriptions") || {};
  const strategy = form.elements.strategy;
  const strategyHint = document.getElementById("strategy-hint");

  function showStrategy() {
    if (strategy && strategyHint) strategyHint.textContent = descriptions[strategy.value] || "";
  }

  // --- field errors from the estimate endpoint ----------------------------------------------

  function setErrors(box, messages) {
    box.querySelectorAll(".error").forEach((node) => node.remove());
    box.classList.toggle("has-error", messages.length > 0);
    messages.forEach((message) => {
      const node = document.createElement("p");
      node.className = "error";
      node.setAttribute("role", "alert");
      node.textContent = message;
      box.appendChild(node);
    });
  }

  function showErrors(errors) {
    form.querySelectorAll(".field[data-field]").forEach((box) => {
      const name = box.dataset.field;
      if (errors[name]) setErrors(box, errors[name]);
      else if (dirty.has(name)) setErrors(box, []);
    });
    setErrors(document.getElementById("form-errors"), errors.__all__ || []);
    const hidden = Object.keys(errors).some((name) => {
      const box = fieldBox(name);
      return box && advanced && advanced.contains(box);
    });
    if (hidden && advanced) advanced.open = true; // an error nobody can see helps nobody
  }

  // --- the estimate ------------------------------------------------------------------------

  const estimateText = document.getElementById("estimate-text");
  const estimateWarning = document.getElementById("estimate-warning");
  const estimateBox = document.getElementById("estimate");
  let timer = null;
  let pending = null;

  function showEstimate(text, warning, failed) {
    estimateText.textContent = text;
    estimateWarning.textContent = warning || "";
    estimateWarning.hidden = !warning;
    estimateBox.classList.toggle("failed", Boolean(failed));
  }

  async function fetchEstimate() {
    if (pending) pending.abort(); // only the newest settings matter
    const controller = new AbortController();
    pending = controller;
    const query = new URLSearchParams(new FormData(form));
    query.delete("csrfmiddlewaretoken");
    estimateBox.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.estimateUrl + "?" + query, {
        signal: controller.signal, headers: { Accept: "application/json" },
      });
      const body = await response.json();
      if (response.ok) {
        showErrors({});
        showEstimate("With these settings: " + body.text + ".", body.warning);
      } else {
        const errors = body.errors || {};
        showErrors(errors);
        const first = Object.values(errors)[0];
        showEstimate(first ? first[0] : "These settings cannot be estimated.", "", true);
      }
    } catch (error) {
      if (error.name !== "AbortError") showEstimate("The estimate is unavailable right now.", "", true);
    } finally {
      if (pending === controller) {
        pending = null;
        estimateBox.removeAttribute("aria-busy");
      }
    }
  }

  function scheduleEstimate() {
    clearTimeout(timer);
    timer = setTimeout(fetchEstimate, ESTIMATE_DELAY_MS);
  }

  function changed(name) {
    if (name) dirty.add(name);
    scheduleEstimate();
  }

  form.addEventListener("input", (event) => changed(event.target.name));
  form.addEventListener("change", (event) => {
    if (event.target === target || event.target === task) showTask();
    if (event.target === strategy) showStrategy();
    if (event.target === target || event.target === metric) showMetric();
    changed(event.target.name);
  });

  showTask();
  showStrategy();
  showMetric();
  fetchEstimate();
})();
