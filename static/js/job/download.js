// Downloads a worker prepares (a bundle: exported and checked; predictions for every row), with
// progress: the link asks its address for JSON until the file is ready (202: how far the work has
// got), then shows the bytes arriving, then saves the file. Without JavaScript the same links lead
// to a page that reloads itself until the file downloads.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const U = window.NasUnits;

  const Files = window.NasFiles;

  // The server's own words for a refusal (409: no model, weights gone), never an HTML error page.
  async function failure(response) {
    const text = (await response.text()).trim();
    const plain = text && text.length < 1000 && !text.includes("<");
    return plain ? text : "The download failed (HTTP " + response.status + "); try again later.";
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Ask until the server says the file is ready; each 202 says how far the worker has got.
  async function prepared(anchor, bar, text) {
    for (;;) {
      const response = await fetch(anchor.href, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => ({}));
      if (response.ok && body.state === "ready") return body;
      if (response.status !== 202) {
        throw new Error(body.error || "The download failed (HTTP " + response.status + "); try again later.");
      }
      if (body.progress > 0) bar.value = body.progress;
      else bar.removeAttribute("value");
      text.textContent = (body.message || "Preparing…") + (body.seconds ? " (" + Math.round(body.seconds) + " s)" : "");
      await sleep(1000);
    }
  }

  async function download(anchor, state) {
    const bar = state.querySelector("progress");
    const text = state.querySelector(".text");
    const label = anchor.dataset.label || anchor.textContent;
    anchor.dataset.label = label;
    anchor.setAttribute("aria-busy", "true");
    state.classList.remove("error");
    anchor.textContent = "Preparing…";
    bar.hidden = false;
    bar.max = 1;
    bar.removeAttribute("value"); // indeterminate until the worker reports
    text.textContent = "Asking the server…";
    try {
      await prepared(anchor, bar, text);
      const response = await fetch(anchor.href, { credentials: "same-origin" });
      if (response.status !== 200) { // 202: a refit replaced the model meanwhile; it is being prepared again
        throw new Error(response.ok ? "The model changed meanwhile; click again for the new file." : await failure(response));
      }
      const total = Number(response.headers.get("Content-Length")) || 0;
      const reader = response.body.getReader();
      const chunks = [];
      let received = 0;
      anchor.textContent = "Downloading…";
      bar.max = 1;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        received += value.length;
        if (total) {
          bar.value = received / total;
          anchor.textContent = "Downloading… " + Math.floor((100 * received) / total) + " %";
        }
        text.textContent = U.bytes(received) + (total ? " of " + U.bytes(total) : "");
      }
      const name = Files.nameOf(response, anchor.href.split("/").pop());
      Files.save(new Blob(chunks, { type: response.headers.get("Content-Type") || "application/octet-stream" }), name);
      text.textContent = "Saved " + name + " (" + U.bytes(received) + ").";
    } catch (error) {
      state.classList.add("error");
      text.textContent = error instanceof TypeError ? "The download was interrupted; try again." : error.message;
    } finally {
      anchor.textContent = label;
      anchor.removeAttribute("aria-busy");
      bar.hidden = true;
    }
  }

  // One listener for every download link on the page, those drawn later (comparison cards) too.
  function init(root) {
    if (!window.fetch || !window.ReadableStream) return; // old browser: the links download as they are
    root.addEventListener("click", (event) => {
      const anchor = event.target.closest("a[data-download]");
      if (!anchor || anchor.getAttribute("href") === "#" || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      if (anchor.getAttribute("aria-busy")) return;
      const state = document.getElementById(anchor.dataset.status);
      download(anchor, state);
    });
  }

  // A link and the element beside it that shows its progress and errors.
  function link(href, label, stateId) {
    const anchor = document.createElement("a");
    anchor.className = "button";
    anchor.href = href;
    anchor.textContent = label;
    anchor.dataset.download = "";
    anchor.dataset.status = stateId;
    const state = document.createElement("span");
    state.className = "download-state";
    state.id = stateId;
    state.setAttribute("role", "status");
    const bar = document.createElement("progress");
    bar.hidden = true;
    const text = document.createElement("span");
    text.className = "text";
    state.append(bar, text);
    return [anchor, state];
  }

  window.NasJob.download = { init, link };
})();
