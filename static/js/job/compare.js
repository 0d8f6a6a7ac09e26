// Compare up to three models side by side: scores, costs, layers, and how each does on the test
// split (a confusion matrix, or a residual plot for regression), fetched once per trial.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const D = window.NasJob.describe;
  const evaluations = new Map(); // trial number -> Promise of its evaluation.json body
  const progressOf = new Map(); // trial number -> what shows a pending evaluation's progress
  let store = null;
  let root = null;
  let changed = () => {};

  function say(text) {
    const message = document.getElementById("compare-message");
    message.textContent = text;
    message.hidden = !text;
  }

  // Returns true when the trial's comparison state is now what the user asked for.
  function toggle(id) {
    const at = store.compared.indexOf(id);
    if (at >= 0) {
      store.compared.splice(at, 1);
      say("");
    } else if (store.compared.length >= store.MAX_COMPARED) {
      say("You can compare at most " + store.MAX_COMPARED + " models at a time; untick one first.");
      return false;
    } else {
      store.compared.push(id);
      say("");
    }
    changed();
    return true;
  }

  // A worker computes an evaluation the first time: 202 answers say how far it got, until the result comes.
  function fetchEvaluation(number, onProgress) {
    progressOf.set(number, onProgress);
    if (!evaluations.has(number)) {
      const url = store.url(root.dataset.evaluationUrl, number);
      const ask = () => fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) => response.json().catch(() => ({})).then((body) => {
          if (response.status === 202) {
            (progressOf.get(number) || (() => {}))(body);
            return new Promise((resolve) => setTimeout(resolve, 1000)).then(ask);
          }
          if (response.ok) return body;
          throw new Error(body.error || "The test-split results could not be loaded (HTTP " + response.status + ").");
        }));
      const request = ask();
      request.catch(() => evaluations.delete(number)); // a failure is retried when the card is drawn again
      evaluations.set(number, request);
    }
    return evaluations.get(number);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function details(t) {
    const dl = element("dl", "card-metrics");
    const rows = Object.entries(t.metrics).filter(([k, v]) => D.METRICS[k] && typeof v === "number")
      .map(([k, v]) => ["validation " + D.METRICS[k], D.number(v)])
      .concat(Object.entries(t.test_metrics || {}).filter(([k, v]) => D.METRICS[k] && typeof v === "number")
        .map(([k, v]) => ["test " + D.METRICS[k] + " (refit)", D.number(v)]))
      .concat(Object.keys(D.COSTS).map((k) => [D.COSTS[k].label, D.cost(k, t.costs[k])]))
      .concat([["training", D.seconds(t.train_seconds)]]);
    rows.forEach(([name, value]) => dl.append(element("dt", "", name), element("dd", "", value)));
    return dl;
  }

  function confusion(result) {
    const table = element("table", "confusion");
    table.dataset.total = String(result.confusion.flat().reduce((a, b) => a + b, 0));
    table.setAttribute("aria-label", "Confusion matrix on the test split");
    const head = element("tr");
    head.append(element("th", "corner", "true ↓ predicted →"));
    result.labels.forEach((label) => {
      const th = element("th", "", label);
      th.scope = "col";
      head.append(th);
    });
    const thead = element("thead");
    thead.append(head);
    table.append(thead);
    const body = element("tbody");
    result.confusion.forEach((counts, i) => {
      const tr = element("tr");
      const th = element("th", "", result.labels[i]);
      th.scope = "row";
      tr.append(th);
      const rowTotal = counts.reduce((a, b) => a + b, 0) || 1;
      counts.forEach((count, j) => {
        const td = element("td", i === j ? "hit" : "miss", String(count));
        // Shade by the share of the true class, so a rare class's errors still show.
        const share = count / rowTotal;
        td.style.background = i === j ? "rgba(31, 136, 61, " + share * 0.6 + ")" : "rgba(207, 34, 46, " + share * 0.6 + ")";
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(body);
    return table;
  }

  function residuals(result, holder) {
    const plot = element("div", "residual-plot");
    plot.dataset.points = String(result.y_true.length);
    const caption = element("p", "muted", "Residuals on the test split: " + result.n + " rows, R² " +
      D.number(result.r2) + ", mean absolute error " + D.number(result.mae) + ".");
    holder.append(caption, plot);
    const residual = result.y_true.map((y, i) => y - result.y_pred[i]);
    Plotly.newPlot(plot, [{
      x: result.y_pred, y: residual, mode: "markers", type: "scatter", marker: { size: 6, color: "#1f6feb" },
      hovertemplate: "predicted %{x:.3g}<br>true − predicted %{y:.3g}<extra></extra>",
    }], {
      margin: { t: 10, r: 10, b: 45, l: 55 }, height: 240, showlegend: false,
      xaxis: { title: { text: "Predicted" } }, yaxis: { title: { text: "True − predicted" }, zeroline: true },
    }, { displaylogo: false, responsive: true });
  }

  const SMALL = { margin: { t: 28, r: 10, b: 45, l: 50 }, height: 230, showlegend: false };
  const PLOT_CONFIG = { displaylogo: false, responsive: true };
  const DIAGONAL = { x: [0, 1], y: [0, 1], mode: "lines", line: { dash: "dot", color: "#8c959f" }, hoverinfo: "skip" };

  // ROC and precision-recall curves (two classes) and the calibration of the predicted class's probability.
  function curves(result, holder) {
    const box = element("div", "curve-plots");
    holder.append(box);
    function plot(name, traces, title, x, y) {
      const node = element("div", "curve-plot");
      node.dataset.curve = name;
      box.append(node);
      Plotly.newPlot(node, traces, Object.assign({}, SMALL, {
        title: { text: title, font: { size: 13 } },
        xaxis: { title: { text: x }, range: [0, 1] }, yaxis: { title: { text: y }, range: [0, 1.02] },
      }), PLOT_CONFIG);
    }
    if (result.roc) {
      plot("roc", [DIAGONAL, { x: result.roc.fpr, y: result.roc.tpr, mode: "lines", line: { color: "#1f6feb" } }],
        "ROC of " + result.positive + " (AUC " + D.number(result.roc.auc) + ")", "False positive rate", "True positive rate");
      plot("pr", [{ x: result.pr.recall, y: result.pr.precision, mode: "lines", line: { color: "#1f6feb" } }],
        "Precision-recall of " + result.positive + " (AP " + D.number(result.pr.average_precision) + ")", "Recall", "Precision");
    }
    if (result.calibration) {
      const c = result.calibration;
      plot("calibration", [DIAGONAL, {
        x: c.predicted, y: c.observed, mode: "lines+markers", marker: { size: c.count.map((n) => 5 + Math.min(10, Math.sqrt(n))) },
        text: c.count.map((n) => n + " rows"), hovertemplate: "said %{x:.2f}, right %{y:.2f} (%{text})<extra></extra>",
        line: { color: "#d29922" },
      }], "Calibration: how often it is right when it says p", "Predicted probability", "Share right");
    }
  }

  function card(t) {
    const article = element("article", "compare-card");
    article.dataset.trialId = t.id;
    article.dataset.number = t.number;
    const header = element("header");
    const remove = element("button", "secondary", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove trial " + t.number + " from the comparison");
    remove.addEventListener("click", () => toggle(t.id));
    header.append(element("h3", "", "Trial " + t.number), remove);
    const summary = element("div", "card-summary");
    const layers = element("div", "card-layers");
    layers.append(element("h4", "", "Layers"), element("p", "muted", D.architecture(t.architecture)));
    const evaluation = element("div", "card-evaluation", "Evaluating on the test split…");
    evaluation.setAttribute("aria-live", "polite");
    const [download, state] = window.NasJob.download.link(
      store.url(root.dataset.bundleUrl, t.number), "Download bundle", "compare-download-" + t.number);
    const page = element("a", "", "Open model page");
    page.href = store.url(root.dataset.trialUrl, t.number);
    const actions = element("p", "card-actions");
    actions.append(download, state, " ", page);
    article.append(header, summary, layers, evaluation, actions);

    fetchEvaluation(t.number, (body) => {
      const percent = body.progress > 0 ? " " + Math.round(100 * body.progress) + " %" : "";
      evaluation.textContent = "Evaluating on the test split… " + (body.message || "") + percent;
    }).then((body) => {
      const list = element("ol", "layers");
      body.layers.forEach((line) => list.append(element("li", "", line)));
      layers.replaceChildren(element("h4", "", "Layers"), list);
      evaluation.replaceChildren();
      if (body.evaluation.task === "classification") {
        evaluation.append(element("p", "muted", "Confusion matrix on the test split: " + body.evaluation.n +
          " rows, accuracy " + D.number(body.evaluation.accuracy) + "."), confusion(body.evaluation));
        curves(body.evaluation, evaluation);
      } else {
        residuals(body.evaluation, evaluation);
      }
    }).catch((error) => {
      evaluation.className = "card-evaluation error";
      evaluation.textContent = error.message;
    });
    return article;
  }

  function render(current) {
    store = current;
    const panels = document.getElementById("compare-panels");
    store.compared = store.compared.filter((id) => store.trials.has(id)); // a snapshot may have dropped one
    [...panels.children].forEach((child) => {
      if (!store.compared.includes(Number(child.dataset.trialId))) child.remove();
    });
    store.compared.forEach((id, index) => {
      const t = store.trials.get(id);
      let article = panels.querySelector('[data-trial-id="' + id + '"]');
      if (!article) article = card(t);
      if (panels.children[index] !== article) panels.insertBefore(article, panels.children[index] || null);
      article.querySelector(".card-summary").replaceChildren(element("p", "", D.scoreName() + " " +
        D.number(D.shown(t.score)) + (store.front.has(t.id) ? " · on the front" : "")), details(t));
    });
    panels.dataset.count = String(store.compared.length);
    if (!store.compared.length) panels.replaceChildren(element("p", "muted empty", "No model ticked yet."));
  }

  function init(options) {
    root = options.root;
    changed = options.changed;
  }

  window.NasJob.compare = { init, render, toggle, includes: (id) => store !== null && store.compared.includes(id) };
})();
