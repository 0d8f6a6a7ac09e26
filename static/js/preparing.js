// The "being prepared" page of a download a worker makes: it asks the same address for JSON every
// second (202: how far the work has got), then starts the download and offers the link, or shows
// the failure in words. Without JavaScript the page reloads itself instead (<noscript> refresh).
(function () {
  "use strict";
  const root = document.getElementById("prepare");
  if (!root || !window.fetch) return;
  const bar = document.getElementById("prepare-progress");
  const message = document.getElementById("prepare-message");
  const U = window.NasUnits;

  function show(body) {
    if (body.progress > 0) bar.value = body.progress;
    else bar.removeAttribute("value"); // nothing measurable yet: an indeterminate bar
    const seconds = body.seconds ? " (" + Math.round(body.seconds) + " s)" : "";
    message.textContent = (body.message || "Preparing…") + seconds;
  }

  function fail(text) {
    bar.hidden = true;
    message.textContent = "";
    const error = document.getElementById("prepare-error");
    error.textContent = text;
    error.hidden = false;
  }

  async function poll() {
    let response;
    let body = {};
    try {
      response = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      body = await response.json().catch(() => ({}));
    } catch (error) {
      message.textContent = "The server could not be reached; trying again…";
      setTimeout(poll, 3000);
      return;
    }
    if (response.status === 202) {
      show(body);
      setTimeout(poll, 1000);
    } else if (response.ok && body.state === "ready") {
      bar.value = 1;
      const size = body.bytes && U ? " (" + U.bytes(body.bytes) + ")" : "";
      message.textContent = "Ready: " + body.filename + size + ". Your download starts now.";
      const link = document.getElementById("prepare-download");
      link.textContent = "Download " + body.filename + size;
      document.getElementById("prepare-ready").hidden = false;
      window.location.assign(body.url); // an attachment: the browser saves it and this page stays
    } else {
      fail(body.error || "The file could not be prepared (HTTP " + response.status + "); try again later.");
    }
  }

  setTimeout(poll, 1000);
})();
