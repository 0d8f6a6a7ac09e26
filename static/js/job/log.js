// The status log: what the search said, in order (kept by the server, so a reload shows it all).
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};

  function clock(iso) {
    const at = new Date(iso);
    return isNaN(at) ? "" : at.toLocaleTimeString("en-GB", { hour12: false });
  }

  function render(store) {
    const list = document.getElementById("job-log");
    const entries = [...store.log.values()].sort((a, b) => a.id - b.id);
    const shown = [...list.children].map((li) => li.dataset.entryId).join(",");
    if (shown === entries.map((e) => e.id).join(",")) return; // unchanged: keep the reader's scroll
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.replaceChildren(...entries.map((entry) => {
      const li = document.createElement("li");
      li.dataset.entryId = entry.id;
      li.className = "log-" + entry.status;
      const time = document.createElement("time");
      time.dateTime = entry.at;
      time.textContent = clock(entry.at);
      const text = document.createElement("span");
      text.textContent = entry.message;
      li.append(time, " ", text);
      return li;
    }));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  window.NasJob.log = { render };
})();
