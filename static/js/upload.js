// The upload page: a drop zone beside the file picker, and an upload with a progress bar.
// Without this script the form still posts normally; with it, the same view answers JSON
// (asked for with an Accept header) and errors appear next to their field without a reload.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  const input = form.querySelector('input[type="file"][name="file"]');
  const zone = document.getElementById("dropzone");
  const chosen = document.getElementById("chosen-file");
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const phase = document.getElementById("upload-phase");
  const button = form.querySelector('button[type="submit"]');
  const maxBytes = Number(form.dataset.maxBytes);
  let busy = false;

  function sizeText(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(1) + " MB";
    if (bytes >= 1024) return (bytes / 1024).toFixed(1) + " KB";
    return bytes + " B";
  }

  // Errors go in the box under their field ("file", "name", "image_size"; "__all__" under the form).
  function showErrors(errors) {
    ["file", "name", "image_size", "__all__"].forEach((field) => {
      const box = document.getElementById(field === "__all__" ? "form-errors" : field + "-errors");
      const wrapper = document.getElementById(field + "-field");
      const messages = errors[field] || [];
      box.replaceChildren(...messages.map((text) => {
        const p = document.createElement("p");
        p.className = "error";
        p.setAttribute("role", "alert");
        p.textContent = text;
        return p;
      }));
      if (wrapper) wrapper.classList.toggle("has-error", messages.length > 0);
    });
  }

  function showChosen() {
    const file = input.files[0];
    chosen.textContent = file ? "Chosen: " + file.name + " (" + sizeText(file.size) + ")" : "";
    zone.classList.toggle("has-file", Boolean(file));
    if (file) showErrors({});
  }

  function setProgress(fraction) {
    const value = Math.round(100 * Math.min(1, Math.max(0, fraction)));
    bar.value = value;
    percent.textContent = value + "%";
  }

  function finish() {
    busy = false;
    button.disabled = false;
    status.hidden = true;
  }

  function fail(errors) {
    finish();
    showErrors(errors);
  }

  function send() {
    const file = input.files[0];
    if (!file) return fail({ file: ["Choose a CSV file first (or drop one on the box)."] });
    if (maxBytes && file.size > maxBytes) {
      return fail({ file: ["The file is larger than the " + form.dataset.maxMb + " MB limit."] });
    }
    busy = true;
    button.disabled = true;
    showErrors({});
    setProgress(0);
    phase.textContent = "Uploading " + file.name + "…";
    status.hidden = false;

    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) setProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => {
      setProgress(1);
      phase.textContent = "Uploaded. Checking the file and profiling its columns…";
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (error) {
        body = null; // a login page or a proxy's error page: not ours to show
      }
      if (body && body.redirect) {
        phase.textContent = "Done. Opening the dataset…";
        window.location.assign(body.redirect);
      } else if (body && body.errors) {
        fail(body.errors);
      } else if (/\/login\//.test(xhr.responseURL)) {
        fail({ file: ["You were logged out. Log in again, then upload the file again."] });
      } else {
        fail({ file: ["The server could not take the file (HTTP " + xhr.status + "). Try again in a moment."] });
      }
    });
    xhr.addEventListener("error", () => {
      fail({ file: ["The upload was interrupted (network error). Check your connection and try again."] });
    });
    xhr.send(new FormData(form));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!busy) send();
  });
  input.addEventListener("change", showChosen);

  // Drag and drop: the dropped file becomes the picker's file, so both paths post the same form.
  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  ["dragleave", "dragend"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("dragging")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length || busy) return;
    const transfer = new DataTransfer();
    transfer.items.add(files[0]); // one dataset per upload
    input.files = transfer.files;
    showChosen();
  });
  // A file dropped beside the box would make the browser open it and leave the page.
  ["dragover", "drop"].forEach((type) => window.addEventListener(type, (event) => {
    if (!zone.contains(event.target)) event.preventDefault();
  }));
})();
