// The dataset page: draws the distribution of the target chosen in the search form (class balance
// or histogram, precomputed at upload so switching target needs no request) and shows only the
// leak warnings that concern that target.
(function () {
  "use strict";
  const chart = document.getElementById("target-chart");
  const dataNode = document.getElementById("profile-chart");
  if (!chart || !dataNode) return;
  const columns = JSON.parse(dataNode.textContent);
  const names = Object.keys(columns);
  const select = document.querySelector('select[name="target"]');
  const nameNode = document.getElementById("target-name");
  const summary = document.getElementById("target-summary");
  const warnings = document.getElementById("warnings");
  const noWarnings = document.getElementById("no-warnings");
  const ACCENT = "#1f6feb";

  function number(value) {
    return Number(value).toLocaleString("en", { maximumSignificantDigits: 4 });
  }

  function share(part, whole) {
    return whole ? Math.round((100 * part) / whole) + "%" : "–";
  }

  function describe(column) {
    const dist = column.distribution;
    const total = dist.counts.reduce((a, b) => a + b, 0) + (dist.other || 0);
    const missing = column.missing ? " " + column.missing.toLocaleString("en") + " rows have no value." : "";
    if (dist.kind === "histogram") {
      const low = dist.edges[0];
      const high = dist.edges[dist.edges.length - 1];
      const mean = column.mean === null || column.mean === undefined ? "" : ", mean " + number(column.mean);
      return "Numbers from " + number(low) + " to " + number(high) + mean + ": a regression target." + missing;
    }
    const largest = Math.max.apply(null, dist.counts);
    const shown = dist.other_values ? " (the " + dist.labels.length + " most frequent are shown)" : "";
    return column.unique + " distinct values" + shown + "; the largest holds " + share(largest, total) +
      " of the rows." + (column.task === "classification" ? " A classification target." : "") + missing;
  }

  function traceFor(dist) {
    if (dist.kind === "histogram") {
      const centers = [];
      const widths = [];
      for (let i = 0; i < dist.counts.length; i += 1) {
        centers.push((dist.edges[i] + dist.edges[i + 1]) / 2);
        widths.push(dist.edges[i + 1] - dist.edges[i]);
      }
      return {
        type: "bar", x: centers, y: dist.counts, width: widths, marker: { color: ACCENT },
        hovertemplate: "%{x}: %{y} rows<extra></extra>",
      };
    }
    const labels = dist.labels.slice();
    const counts = dist.counts.slice();
    if (dist.other) {
      labels.push("other (" + dist.other_values + " values)");
      counts.push(dist.other);
    }
    return {
      type: "bar", x: labels, y: counts, marker: { color: ACCENT },
      hovertemplate: "%{x}: %{y} rows<extra></extra>",
    };
  }

  function showLeaks(name) {
    if (!warnings) return;
    warnings.querySelectorAll("li[data-target]").forEach((item) => {
      item.hidden = item.dataset.target !== name;
    });
    if (noWarnings) noWarnings.hidden = warnings.querySelectorAll("li.warning:not([hidden])").length > 0;
  }

  function draw(name) {
    const column = columns[name];
    if (nameNode) nameNode.textContent = name;
    showLeaks(name);
    if (!column || !column.distribution) {
      chart.hidden = true;
      summary.textContent = "No distribution was kept for this dataset; upload the file again to see it.";
      chart.dataset.target = name;
      return;
    }
    const text = describe(column);
    summary.textContent = text;
    if (!window.Plotly) {
      chart.hidden = true;
      summary.textContent = text + " (The chart could not be loaded.)";
      chart.dataset.target = name;
      return;
    }
    chart.hidden = false;
    chart.setAttribute("role", "img");
    chart.setAttribute("aria-label", "Distribution of " + name + ". " + text);
    const histogram = column.distribution.kind === "histogram";
    const layout = {
      height: 280,
      margin: { l: 56, r: 12, t: 12, b: 56 },
      bargap: histogram ? 0.03 : 0.25,
      xaxis: { title: { text: name }, type: histogram ? "linear" : "category", automargin: true },
      yaxis: { title: { text: "Rows" }, rangemode: "tozero", automargin: true },
      showlegend: false,
    };
    window.Plotly.react(chart, [traceFor(column.distribution)], layout, { responsive: true, displayModeBar: false })
      .then(() => {
        // Read by people's tools and by the tests: which target the drawn chart shows.
        chart.dataset.target = name;
        chart.dataset.kind = column.distribution.kind;
      });
  }

  const initial = (select && select.value) || (nameNode && nameNode.textContent.trim()) || names[names.length - 1];
  if (select) select.addEventListener("change", () => draw(select.value));
  draw(initial);
})();
