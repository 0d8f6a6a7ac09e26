// Saving what a fetch brought back as a file the browser downloads, for the pages that fetch their
// downloads (to show progress or errors in place): window.NasFiles.
(function () {
  "use strict";

  // The file name the server gave (Content-Disposition), else `fallback`.
  function nameOf(response, fallback) {
    const match = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
    return match ? match[1] : fallback;
  }

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  window.NasFiles = { nameOf, save };
})();
