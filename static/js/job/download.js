// Bundle downloads with progress: the server builds (exports and checks) a bundle on demand, which
// takes a few seconds, so a download link first says so, then shows the bytes arriving, then saves
// the file. Without JavaScript the same links are plain downloads.
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

  async function download(anchor, state) {
    const bar = state.querySelector("progress");
    const text = state.querySelector(".text");
    const label = anchor.dataset.label || anchor.textContent;
    anchor.dataset.label = label;
    anchor.setAttribute("aria-busy", "true");
    state.classList.remove("error");
    anchor.textContent = "Building the bundle…";
    bar.hidden = false;
    bar.removeAttribute("value"); // indeterminate: the server's export has no byte count yet
    text.textContent = "The server is exporting and checking the model…";
    try {
      const response = await fetch(anchor.href, { credentials: "same-origin" });
      if (!response.ok) throw new Error(await failure(response));
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
      Files.save(new Blob(chunks, { type: "application/zip" }), name);
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
