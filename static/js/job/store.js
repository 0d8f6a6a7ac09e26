// The job page's state: trials, front, log and job status, fed by WebSocket events. Every view
// reads it and redraws on change, so a snapshot (on connect or reconnect) simply replaces it.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};

  const ENDED = ["finished", "failed", "cancelled"];
  const LOG_LIMIT = 200; // lines kept, as many as a snapshot brings
  const root = document.getElementById("job");
  const objectivesNode = document.getElementById("job-objectives");
  const objectives = (objectivesNode && JSON.parse(objectivesNode.textContent)) || [];
  const listeners = [];
  let scheduled = false;

  const store = {
    ENDED: ENDED,
    MAX_COMPARED: 3,
    task: root ? root.dataset.task : "classification",
    objectives: objectives,
    xCost: objectives[1] || "params", // the cost the Pareto plot and the knee trade the score against
    colourCost: objectives[2] || null,
    trials: new Map(), // trial id -> trial, so a repeated event never doubles a row
    front: new Set(),
    log: new Map(), // log entry id -> entry
    job: { status: "", progress: 0, message: "", error: "", recommended: null, smallest: null, knee: null, reference: null },
    chosenId: null,
    compared: [], // trial ids, in the order they were ticked
    limits: { params: null, flops: null, latency_ms: null, memory_bytes: null }, // null: no limit

    isEnded() { return ENDED.includes(store.job.status); },

    hasModel(t) { return (t.status === "completed" || t.status === "pruned") && t.score !== null; },

    // Trained trials, by number: the points of the plots and the explorer.
    models() {
      return [...store.trials.values()].filter(store.hasModel).sort((a, b) => a.number - b.number);
    },

    byNumber(number) {
      if (number === null || number === undefined) return null;
      return [...store.trials.values()].find((t) => t.number === number) || null;
    },

    url(template, number) {
      return template.replace(/\/trials\/0\//, "/trials/" + number + "/");
    },

    apply(event) {
      if (event.type === "snapshot") {
        store.trials.clear();
        event.trials.forEach((t) => store.trials.set(t.id, t));
        store.front = new Set(event.trials.filter((t) => t.on_front).map((t) => t.id));
        store.log.clear();
        (event.log || []).forEach((entry) => store.log.set(entry.id, entry));
        setJob(event.job);
      } else if (event.type === "trial") {
        store.trials.set(event.trial.id, event.trial);
        store.front = new Set(event.front);
        store.trials.forEach((t) => { t.on_front = store.front.has(t.id); });
      } else if (event.type === "status") {
        setJob(event);
        (event.log || []).forEach((entry) => store.log.set(entry.id, entry)); // known ids are just replaced
        while (store.log.size > LOG_LIMIT) store.log.delete(store.log.keys().next().value); // oldest first
      } else {
        return;
      }
      store.changed();
    },

    subscribe(listener) { listeners.push(listener); },

    // Redraw once for a burst of events (a snapshot, a refit pushing every front trial again).
    changed() {
      if (scheduled) return;
      scheduled = true;
      setTimeout(() => {
        scheduled = false;
        listeners.forEach((listener) => listener(store));
      }, 20);
    },
  };

  function setJob(event) {
    ["status", "progress", "message", "error", "recommended", "smallest", "knee", "reference"].forEach((key) => {
      if (event[key] !== undefined) store.job[key] = event[key];
    });
  }

  window.NasJob.store = store;
})();
