// The trials table: one row per trial, sortable by any column (a header button, so the keyboard
// works too; aria-sort says the order), with a checkbox to compare a trial.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const D = window.NasJob.describe;
  const TEXT_KEYS = ["status"];
  let sort = { key: "number", direction: "ascending" };
  let handlers = { choose: () => {}, toggleCompare: () => false };
  let last = null;
  const built = new Map(); // trial id -> { signature, tr }: a live redraw rebuilds only changed rows

  // Everything a row shows; a row whose signature is unchanged is reused as it is.
  function signature(t, store) {
    return JSON.stringify([t.number, t.status, t.message, t.score, t.costs, t.train_seconds, t.elapsed_seconds,
      store.front.has(t.id), t.id === store.chosenId, store.compared.includes(t.id), store.hasModel(t)]);
  }

  function cachedRow(t, store) {
    const sig = signature(t, store);
    const kept = built.get(t.id);
    if (kept && kept.signature === sig) return kept.tr;
    const tr = row(t, store);
    built.set(t.id, { signature: sig, tr: tr });
    return tr;
  }

  function value(t, key, store) {
    if (key === "number" || key === "status" || key === "score") return t[key];
    if (key === "train_seconds" || key === "elapsed_seconds") return t[key];
    if (key === "front") return store.front.has(t.id) ? 1 : 0;
    return t.costs[key];
  }

  function compare(a, b, store) {
    const x = value(a, sort.key, store);
    const y = value(b, sort.key, store);
    const missing = (v) => v === null || v === undefined;
    if (missing(x) || missing(y)) {
      if (missing(x) && missing(y)) return a.number - b.number;
      return missing(x) ? 1 : -1; // no value: last, whichever the direction
    }
    let order = TEXT_KEYS.includes(sort.key) ? String(x).localeCompare(String(y)) : x - y;
    if (sort.direction === "descending") order = -order;
    return order || a.number - b.number;
  }

  function cell(text, sortValue) {
    const td = document.createElement("td");
    td.textContent = text;
    if (sortValue !== undefined && sortValue !== null) td.dataset.value = String(sortValue);
    return td;
  }

  function row(t, store) {
    const tr = document.createElement("tr");
    tr.dataset.trialId = t.id;
    tr.dataset.number = t.number;
    const model = store.hasModel(t);
    if (t.id === store.chosenId) tr.classList.add("chosen");
    if (store.front.has(t.id)) tr.classList.add("front");

    const pick = document.createElement("td");
    if (model) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "compare-box";
      box.checked = store.compared.includes(t.id);
      box.setAttribute("aria-label", "Compare trial " + t.number);
      box.addEventListener("change", () => {
        if (!handlers.toggleCompare(t.id)) box.checked = store.compared.includes(t.id);
      });
      pick.appendChild(box);
    }
    tr.appendChild(pick);

    const numberCell = cell("", t.number);
    if (model) {
      const choose = document.createElement("button");
      choose.type = "button";
      choose.className = "link choose";
      choose.textContent = t.number;
      choose.setAttribute("aria-label", "Choose trial " + t.number);
      choose.addEventListener("click", () => handlers.choose(t.id));
      numberCell.appendChild(choose);
    } else {
      numberCell.textContent = t.number;
    }
    tr.appendChild(numberCell);
    const status = cell(t.status, t.status);
    if (t.message) status.title = t.message;
    const training = cell(D.seconds(t.train_seconds), t.train_seconds);
    if (D.trainedOn(t)) training.title = "Trained" + D.trainedOn(t);
    tr.append(
      status,
      cell(D.number(D.shown(t.score)), t.score),
      cell(D.cost("params", t.costs.params), t.costs.params),
      cell(D.cost("flops", t.costs.flops), t.costs.flops),
      cell(D.cost("latency_ms", t.costs.latency_ms), t.costs.latency_ms),
      cell(D.cost("size_bytes", t.costs.size_bytes), t.costs.size_bytes),
      cell(D.cost("memory_bytes", t.costs.memory_bytes), t.costs.memory_bytes),
      training,
      cell(D.seconds(t.elapsed_seconds), t.elapsed_seconds),
      cell(store.front.has(t.id) ? "★" : "", store.front.has(t.id) ? 1 : 0),
    );
    return tr;
  }

  function render(store) {
    last = store;
    const table = document.getElementById("trials");
    table.querySelectorAll("th[aria-sort]").forEach((th) => {
      const key = th.querySelector("button").dataset.sortKey;
      th.setAttribute("aria-sort", key === sort.key ? sort.direction : "none");
    });
    const body = table.querySelector("tbody");
    const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement : null;
    const refocus = focused && { id: focused.closest("tr").dataset.trialId, className: focused.className };
    built.forEach((_, id) => { if (!store.trials.has(id)) built.delete(id); }); // gone since a snapshot
    body.replaceChildren(...[...store.trials.values()].sort((a, b) => compare(a, b, store)).map((t) => cachedRow(t, store)));
    if (refocus) { // a live redraw must not steal the keyboard user's place
      const again = body.querySelector('tr[data-trial-id="' + refocus.id + '"] .' + refocus.className.split(" ").join("."));
      if (again) again.focus();
    }
  }

  function init(options) {
    handlers = options;
    document.querySelectorAll("#trials button.sort").forEach((button) => {
      button.addEventListener("click", () => {
        const key = button.dataset.sortKey;
        if (sort.key === key) {
          sort = { key: key, direction: sort.direction === "ascending" ? "descending" : "ascending" };
        } else {
          // Scores are read best first; numbers and costs smallest first.
          sort = { key: key, direction: key === "score" || key === "front" ? "descending" : "ascending" };
        }
        if (last) render(last);
      });
    });
  }

  window.NasJob.table = { init, render, sortState: () => Object.assign({}, sort) };
})();
