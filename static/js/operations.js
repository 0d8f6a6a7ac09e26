// The staff operations page: polls status.json every few seconds and redraws its tables.
// Short polling, not a WebSocket: every figure is itself pulled (a Celery inspect broadcast,
// an LLEN, a disk walk), so there is nothing to push; see webapp/operations/views.py.
(function () {
  "use strict";
  const root = document.getElementById("operations");
  if (!root) return;
  const statusUrl = root.dataset.statusUrl;
  const jobUrl = root.dataset.jobUrl;
  const pollMs = Number(root.dataset.pollSeconds || 3) * 1000;
  let polls = 0;

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (className) td.className = className;
    return td;
  }

  function jobCell(id) {
    const td = document.createElement("td");
    const link = document.createElement("a");
    link.href = jobUrl.replace(/\/0\/change\/$/, "/" + id + "/change/");
    link.textContent = "#" + id;
    td.appendChild(link);
    return td;
  }

  function fill(table, rows, columns, emptyText) {
    const body = document.querySelector("#" + table + " tbody");
    body.replaceChildren();
    if (!rows || rows.length === 0) {
      const tr = document.createElement("tr");
      const td = cell(emptyText, "ops-empty");
      td.colSpan = columns;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    for (const row of rows) body.appendChild(row);
  }

  function row(cells, attributes) {
    const tr = document.createElement("tr");
    for (const [name, value] of Object.entries(attributes || {})) tr.dataset[name] = value;
    for (const td of cells) tr.appendChild(td);
    return tr;
  }

  function seconds(value) {
    return value === null || value === undefined ? null : value.toFixed(1) + " s";
  }

  function bytes(value) {
    if (value === null || value === undefined) return null;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let size = value;
    let unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return (unit === 0 ? size : size.toFixed(1)) + " " + units[unit];
  }

  function progressCell(fraction) {
    const td = document.createElement("td");
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = fraction || 0;
    td.appendChild(bar);
    td.appendChild(document.createTextNode(" " + Math.round((fraction || 0) * 100) + " %"));
    return td;
  }

  function render(status) {
    fill("ops-queues", (status.queues || []).map((queue) =>
      row([cell(queue.name), cell(queue.depth, "number")], { queue: queue.name, depth: queue.depth })
    ), 2, status.queues === null ? "Could not read the broker." : "No queues.");

    fill("ops-workers", status.workers.map((worker) => {
      const state = worker.answering ? (worker.job_ids.length ? "busy" : "idle") : "busy, not answering";
      const jobs = worker.job_ids.length ? worker.job_ids.map((id) => "#" + id).join(", ") : null;
      return row(
        [cell(worker.name), cell(state), cell(jobs), cell(seconds(worker.heartbeat_age_seconds), "number")],
        { worker: worker.name },
      );
    }), 4, "No worker is online.");

    fill("ops-running", status.running_jobs.map((job) => row([
      jobCell(job.id), cell(job.owner), cell(job.dataset), progressCell(job.progress), cell(job.message),
      cell(job.worker_host || null), cell(seconds(job.heartbeat_age_seconds), "number"),
    ], { job: job.id })), 7, "No job is running.");

    fill("ops-failed", status.failed_jobs.map((job) => row([
      jobCell(job.id), cell(job.owner), cell(job.dataset),
      cell(job.finished_at ? new Date(job.finished_at).toLocaleString() : null), cell(job.error, "ops-error"),
    ], { job: job.id })), 5, "No job failed.");
    document.getElementById("ops-failed-window").textContent = status.failed_window_hours;

    const disk = status.disk || {};
    document.getElementById("ops-disk-datasets").textContent = bytes(disk.datasets_bytes) || "—";
    document.getElementById("ops-disk-jobs").textContent = bytes(disk.jobs_bytes) || "—";
    document.getElementById("ops-disk-free").textContent = bytes(disk.free_bytes) || "—";

    const errors = document.getElementById("ops-errors");
    errors.replaceChildren();
    for (const [part, message] of Object.entries(status.errors || {})) {
      const li = document.createElement("li");
      li.textContent = part + ": " + message;
      errors.appendChild(li);
    }
    errors.hidden = errors.children.length === 0;

    const updated = document.getElementById("ops-updated");
    updated.dateTime = status.generated_at;
    updated.textContent = new Date(status.generated_at).toLocaleTimeString();
    polls += 1;
    root.dataset.polls = polls;
  }

  async function poll() {
    // One request at a time: the next starts only after this one ends, however slow it is.
    try {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      document.getElementById("ops-connection").textContent = "live";
    } catch (error) {
      document.getElementById("ops-connection").textContent = "cannot reach the server (" + error.message + "); retrying";
    }
    window.setTimeout(schedule, pollMs);
  }

  function schedule() {
    // A hidden tab does not poll; it catches up as soon as it is shown again.
    if (document.visibilityState === "hidden") {
      document.addEventListener("visibilitychange", schedule, { once: true });
      return;
    }
    poll();
  }

  poll();
})();
