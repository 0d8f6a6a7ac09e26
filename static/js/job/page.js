// The job page: wires the store to its views (status bar, plots, explorer, chosen model, comparison,
// trials table, log) and starts the socket. Exposed as NasJob.page for tests and the console.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const J = window.NasJob;
  const D = J.describe;
  const store = J.store;
  store.job.status = document.getElementById("job-status").textContent.trim();

  function renderStatus() {
    const job = store.job;
    const badge = document.getElementById("job-status");
    badge.textContent = job.status;
    badge.className = "status " + job.status;
    document.getElementById("job-progress").value = job.progress || 0;
    document.getElementById("job-percent").textContent = Math.round(100 * (job.progress || 0)) + " %";
    document.getElementById("job-message").textContent = job.message || "";
    const error = document.getElementById("job-error");
    error.textContent = job.error || "";
    error.hidden = !job.error;
    if (store.isEnded()) {
      const cancel = document.getElementById("cancel-form");
      if (cancel) cancel.remove();
    }
  }

  // After the search the recommended model is chosen for the user: the ensemble when it beats every
  // single model on validation, else the best single model; without one, the most accurate front model.
  function chooseDefault() {
    if (store.chosenId !== null || !store.isEnded()) return;
    const recommended = store.byNumber(store.job.recommended);
    if (recommended && store.hasModel(recommended)) {
      store.chosenId = recommended.id;
      return;
    }
    const front = store.models().filter((t) => store.front.has(t.id)).sort((a, b) => b.score - a.score);
    if (front.length) store.chosenId = front[0].id;
  }

  function renderChosen() {
    const t = store.trials.get(store.chosenId);
    const section = document.getElementById("chosen");
    if (!t) return; // keep what the server drew (a finished job's recommended trial) until there is one
    section.hidden = false;
    document.getElementById("chosen-number").textContent = t.number;
    const members = t.architecture && t.architecture.space === "ensemble" ? t.architecture.members || [] : null;
    document.getElementById("chosen-kind").textContent = members
      ? ": an ensemble of trials " + members.join(", ") + " (their predictions averaged)" : "";
    document.getElementById("chosen-recommended").hidden = t.number !== store.job.recommended;
    const rows = Object.entries(t.metrics).filter(([k, v]) => D.METRICS[k] && typeof v === "number")
      .map(([k, v]) => ["validation " + D.METRICS[k], D.number(v, 4)])
      .concat(Object.entries(t.test_metrics || {}).filter(([k, v]) => D.METRICS[k] && typeof v === "number")
        .map(([k, v]) => ["test " + D.METRICS[k] + " (refit)", D.number(v, 4)]))
      .concat(Object.keys(D.COSTS).map((k) => [D.COSTS[k].label, D.cost(k, t.costs[k])]))
      .concat([["architecture", D.architecture(t.architecture)], ["training", D.seconds(t.train_seconds)]]);
    const details = document.getElementById("chosen-details");
    details.replaceChildren(...rows.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }));
    const bundle = document.getElementById("download-bundle");
    if (!bundle.getAttribute("aria-busy")) bundle.href = store.url(root.dataset.bundleUrl, t.number);
    const predictions = document.getElementById("download-predictions");
    if (!predictions.getAttribute("aria-busy")) predictions.href = store.url(root.dataset.predictionsUrl, t.number);
    document.getElementById("chosen-model-page").href = store.url(root.dataset.trialUrl, t.number);
    const compare = document.getElementById("chosen-compare");
    compare.textContent = store.compared.includes(t.id) ? "Remove from comparison" : "Add to comparison";
  }

  function choose(id) {
    const t = store.trials.get(id);
    if (!t || !store.hasModel(t)) return;
    store.chosenId = id;
    store.changed();
  }

  function render() {
    chooseDefault();
    renderStatus();
    J.explorer.render(store); // before the plot: it settles the limits the plot greys by
    J.plots.render(store, J.explorer);
    renderChosen();
    J.compare.render(store);
    J.table.render(store);
    J.log.render(store);
    J.notify.render(store);
    if (store.isEnded()) document.getElementById("connection").textContent = ""; // nothing more will come
  }

  store.subscribe(render);
  J.plots.onPick(choose);
  J.table.init({ choose: choose, toggleCompare: (id) => J.compare.toggle(id) });
  J.explorer.init({ choose: choose, changed: () => store.changed() });
  J.compare.init({ root: root, changed: () => store.changed() });
  J.download.init(root);
  document.getElementById("chosen-compare").addEventListener("click", () => {
    if (store.chosenId !== null) J.compare.toggle(store.chosenId);
  });
  J.notify.init(store, root.dataset.searchName);
  render();
  J.socket.start({ path: root.dataset.wsPath, onEvent: store.apply, ended: store.isEnded });

  J.page = { choose: choose, render: render };
})();
