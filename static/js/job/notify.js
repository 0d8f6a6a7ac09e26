// Telling the person a search ended while they look elsewhere: the tab's title carries the progress
// while it runs ("42 % · …") and the outcome once it ends ("Finished · …"), and a browser
// notification says so when they allowed it (the button asks; a browser only asks on a click).
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const WORDS = { finished: "Finished", failed: "Failed", cancelled: "Cancelled" };
  let baseTitle = "";
  let name = "";
  let wasEnded = true;
  let told = false;

  function permission() {
    return "Notification" in window ? Notification.permission : "unsupported";
  }

  function renderButton() {
    const button = document.getElementById("notify-me");
    if (!button) return;
    const state = permission();
    button.hidden = wasEnded || state !== "default";
    const note = document.getElementById("notify-state");
    if (note) {
      note.textContent = wasEnded ? "" : state === "granted" ? "You will get a notification when it ends."
        : state === "denied" ? "Notifications are blocked for this site; the tab's title will say when it ends." : "";
    }
  }

  function tell(job) {
    const word = WORDS[job.status] || job.status;
    document.title = word + " · " + baseTitle;
    if (told || permission() !== "granted") return;
    told = true;
    try {
      const note = new Notification(word + ": " + name, { body: job.error || job.message || "", tag: "nas-" + name });
      note.onclick = () => { window.focus(); note.close(); };
    } catch (error) {
      // Some browsers only notify from a service worker: the title still says it.
    }
  }

  // Called on every render of the job page with the store.
  function render(store) {
    const job = store.job;
    const ended = store.isEnded();
    if (!ended) {
      document.title = Math.round(100 * (job.progress || 0)) + " % · " + baseTitle;
    } else if (!wasEnded) {
      tell(job); // it ended while the page was open
    }
    wasEnded = ended;
    renderButton();
  }

  function init(store, searchName) {
    baseTitle = document.title;
    name = searchName;
    wasEnded = store.isEnded();
    const button = document.getElementById("notify-me");
    if (button) {
      button.addEventListener("click", () => {
        Notification.requestPermission().then(renderButton);
      });
    }
    renderButton();
  }

  window.NasJob.notify = { init: init, render: render };
})();
