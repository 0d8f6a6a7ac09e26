// The model page's "try it" form, without leaving the page: the upload is posted with fetch, and the
// answer (the same page the server renders for a plain POST) lends its results and field errors.
// Without this script the form still works as a normal POST.
(function () {
  "use strict";
  // The bundle link: prepared by a worker, with its progress shown beside it (job/download.js).
  if (window.NasJob && window.NasJob.download) window.NasJob.download.init(document.body);
  const form = document.getElementById("try-form");
  if (!form || !window.fetch || !window.DOMParser || !window.FormData || !window.NasFiles) return;
  const status = document.getElementById("try-status");
  const buttons = form.querySelectorAll("button[type=submit]");
  let busy = false;

  function setBusy(value, text) {
    busy = value;
    buttons.forEach((button) => { button.disabled = value; });
    form.setAttribute("aria-busy", String(value));
    status.textContent = text;
  }

  // Put the server's version of an element in place of ours (the file input stays, with its file).
  function swap(id, doc) {
    const fresh = doc.getElementById(id);
    const old = document.getElementById(id);
    if (!fresh || !old) return false;
    old.replaceWith(document.importNode(fresh, true));
    return true;
  }

  function showFieldState(doc) {
    const hasError = Boolean(doc.querySelector("#try-file-errors .error"));
    document.getElementById("try-file-field").classList.toggle("has-error", hasError);
    const input = form.querySelector("input[type=file]");
    if (hasError) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function clearErrors() {
    document.getElementById("try-file-errors").replaceChildren();
    document.getElementById("try-file-field").classList.remove("has-error");
    form.querySelector("input[type=file]").removeAttribute("aria-invalid");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const data = new FormData(form);
    const submitter = event.submitter;
    if (submitter && submitter.name) data.set(submitter.name, submitter.value);
    const wantsCsv = data.get("format") === "csv";
    setBusy(true, wantsCsv ? "Preparing the CSV…" : "Predicting…");
    let message = "";
    try {
      const response = await fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
      const type = response.headers.get("Content-Type") || "";
      if (response.ok && type.startsWith("text/csv")) {
        clearErrors();
        window.NasFiles.save(await response.blob(), window.NasFiles.nameOf(response, "predictions.csv"));
        message = "The CSV with every prediction was downloaded.";
      } else if (type.startsWith("text/html")) {
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const answered = swap("try-file-errors", doc) && swap("try-results", doc);
        if (answered) showFieldState(doc);
        else message = "The page could not predict (error " + response.status + "); reload it and try again.";
      } else {
        message = "The server answered with error " + response.status + "; try again in a moment.";
      }
    } catch (error) {
      message = "The server could not be reached; check the connection and try again.";
    }
    setBusy(false, message);
  });
})();
