// The job page: listens on the job's WebSocket and redraws the Pareto front live.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const ENDED = ["finished", "failed", "cancelled"];
  const trials = new Map(); // trial id -> trial, so a repeated event never doubles a point
  let front = new Set();
  let status = document.getElementById("job-status").textContent.trim();
  let chosenId = null;
  let recommendedNumber = null;
  const scoreLabel = root.dataset.task === "regression" ? "R² (validation)" : "Accuracy (validation)";
  const objectivesNode = document.getElementById("job-objectives");
  const objectives = (objectivesNode && JSON.parse(objectivesNode.textContent)) || [];
  const COST_LABELS = {
    params: "Parameters", flops: "FLOPs", latency_ms: "Latency (ms)", size_bytes: "Model size (bytes)",
  };
  const xCost = objectives[1] || "params";
  const colourCost = objectives[2] || null;

  function trialUrl(template, number) {
    return template.replace(/\/trials\/0\//, "/trials/" + number + "/");
  }

  function setConnection(text) {
    document.getElementById("connection").textContent = text;
  }

  function setStatus(event) {
    status = event.status;
    const badge = document.getElementById("job-status");
    badge.textContent = status;
    badge.className = "status " + status;
    document.getElementById("job-progress").value = event.progress || 0;
    document.getElementById("job-message").textContent = event.message || "";
    const error = document.getElementById("job-error");
    error.textContent = event.error || "";
    error.hidden = !event.error;
    if (ENDED.includes(status)) {
      const cancel = document.getElementById("cancel-form");
      if (cancel) cancel.remove();
      if (chosenId === null) chooseDefault(event.recommended);
    }
  }

  function hasModel(t) {
    return (t.status === "completed" || t.status === "pruned") && t.score !== null;
  }

  function completed() {
    return [...trials.values()].filter((t) => hasModel(t) && t.costs[xCost] !== null)
      .sort((a, b) => a.number - b.number);
  }

  function format(value, digits) {
    if (value === null || value === undefined) return "–";
    return typeof value === "number" ? Number(value.toFixed(digits)).toLocaleString() : String(value);
  }

  function redrawPlot() {
    const done = completed();
    const onFront = done.filter((t) => front.has(t.id)).sort((a, b) => a.costs[xCost] - b.costs[xCost]);
    const text = (t) => "trial " + t.number + (t.status === "pruned" ? " (pruned)" : "") + "<br>" +
      objectives.slice(1).map((c) => COST_LABELS[c] + ": " + format(t.costs[c], 4)).join("<br>");
    // Open circles: pruned by multi-fidelity (scored after fewer epochs); filled: fully trained.
    const marker = { size: 9, color: "#9aa5b1", symbol: done.map((t) => (t.status === "pruned" ? "circle-open" : "circle")) };
    if (colourCost) {
      Object.assign(marker, {
        color: done.map((t) => t.costs[colourCost]), colorscale: "Viridis", showscale: true,
        colorbar: { title: { text: COST_LABELS[colourCost] } },
      });
    }
    const traces = [
      {
        x: done.map((t) => t.costs[xCost]), y: done.map((t) => t.score), customdata: done.map((t) => t.id),
        text: done.map(text), hoverinfo: "text+y", mode: "markers", type: "scatter", name: "trials (open: pruned)",
        marker: marker,
      },
      {
        x: onFront.map((t) => t.costs[xCost]), y: onFront.map((t) => t.score), customdata: onFront.map((t) => t.id),
        text: onFront.map(text), hoverinfo: "text+y", mode: "lines+markers", type: "scatter", name: "Pareto front",
        line: { shape: "hv", color: "#1f6feb" }, marker: { size: 12, color: "#1f6feb" },
      },
    ];
    const chosen = trials.get(chosenId);
    if (chosen) {
      traces.push({
        x: [chosen.costs[xCost]], y: [chosen.score], customdata: [chosen.id], mode: "markers", type: "scatter",
        name: "chosen", hoverinfo: "skip", marker: { size: 18, symbol: "circle-open", line: { width: 3, color: "#d29922" } },
      });
    }
    const layout = {
      margin: { t: 20, r: 20, b: 50, l: 60 }, height: 380,
      xaxis: { title: { text: COST_LABELS[xCost] + " (less is better)" }, type: "log" },
      yaxis: { title: { text: scoreLabel } }, legend: { orientation: "h" },
    };
    const plot = document.getElementById("pareto");
    Plotly.react(plot, traces, layout, { displaylogo: false, responsive: true });
    plot.dataset.points = String(done.length);
    if (!plot.dataset.bound) {
      plot.on("plotly_click", (event) => choose(event.points[0].customdata));
      plot.dataset.bound = "1";
    }
  }

  function redrawTable() {
    const body = document.querySelector("#trials tbody");
    body.replaceChildren();
    [...trials.values()].sort((a, b) => a.number - b.number).forEach((t) => {
      const row = document.createElement("tr");
      row.dataset.trialId = t.id;
      if (hasModel(t)) row.classList.add("clickable");
      if (t.id === chosenId) row.classList.add("chosen");
      const cells = [
        t.number, t.status + (t.message ? " (" + t.message + ")" : ""), format(t.score, 4),
        format(t.costs.params, 0), format(t.costs.flops, 0), format(t.costs.latency_ms, 3),
        format(t.train_seconds, 1), front.has(t.id) ? "★" : "",
      ];
      cells.forEach((value) => {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      });
      if (hasModel(t)) row.addEventListener("click", () => choose(t.id));
      body.appendChild(row);
    });
  }

  function redraw() {
    redrawPlot();
    redrawTable();
  }

  function describe(arch) {
    if (arch.space === "ensemble") return "ensemble of trials " + arch.members.join(", ");
    if (arch.layers && !arch.layers.length) return "linear model (no hidden layer)";
    if (arch.layers) return arch.layers.map((l) => l.units + " " + l.activation).join(" → ");
    if (arch.stages) return arch.stages.length + " convolution stages";
    return arch.space || "";
  }

  // The search recommends the cheapest front model within one standard error of the best score;
  // without one (an older job), the most accurate front model.
  function chooseDefault(number) {
    if (number !== undefined && number !== null) recommendedNumber = number;
    const recommended = [...trials.values()].find((t) => t.number === recommendedNumber);
    if (recommended && hasModel(recommended)) {
      choose(recommended.id);
      return;
    }
    const candidates = completed().filter((t) => front.has(t.id));
    if (!candidates.length) return;
    candidates.sort((a, b) => b.score - a.score);
    choose(candidates[0].id);
  }

  function choose(id) {
    const t = trials.get(id);
    if (!t || !hasModel(t)) return;
    chosenId = id;
    document.getElementById("chosen").hidden = false;
    document.getElementById("chosen-number").textContent = t.number;
    document.getElementById("chosen-recommended").hidden = t.number !== recommendedNumber;
    const details = document.getElementById("chosen-details");
    details.replaceChildren();
    const rows = Object.entries(t.metrics).map(([k, v]) => ["validation " + k, v])
      .concat(Object.entries(t.test_metrics || {}).map(([k, v]) => ["test " + k + " (refit)", v]))
      .concat(Object.entries(t.costs));
    rows.push(["architecture", describe(t.architecture)]);
    rows.forEach(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = format(value, 4);
      details.append(dt, dd);
    });
    document.getElementById("download-bundle").href = trialUrl(root.dataset.bundleUrl, t.number);
    document.getElementById("download-predictions").href = trialUrl(root.dataset.predictionsUrl, t.number);
    redraw();
  }

  function handle(event) {
    if (event.type === "snapshot") {
      trials.clear();
      event.trials.forEach((t) => trials.set(t.id, t));
      front = new Set(event.trials.filter((t) => t.on_front).map((t) => t.id));
      redraw();
      setStatus(event.job);
    } else if (event.type === "trial") {
      trials.set(event.trial.id, event.trial);
      front = new Set(event.front);
      trials.forEach((t) => { t.on_front = front.has(t.id); });
      redraw();
    } else if (event.type === "status") {
      setStatus(event);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + root.dataset.wsPath);
    socket.onopen = () => setConnection("● live");
    socket.onmessage = (message) => handle(JSON.parse(message.data));
    socket.onclose = (event) => {
      if (event.code === 4401 || event.code === 4404) {
        setConnection("not allowed to watch this search");
      } else if (ENDED.includes(status)) {
        setConnection("");
      } else {
        setConnection("reconnecting…");
        setTimeout(connect, 2000);
      }
    };
  }

  redraw();
  connect();
})();
