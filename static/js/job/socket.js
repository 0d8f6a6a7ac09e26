// The job's WebSocket: a snapshot on every (re)connect, then live events. When it drops, the page
// says so and reconnects every 2 s; the new snapshot replaces what it had, so nothing is missed.
(function () {
  "use strict";
  window.NasJob = window.NasJob || {};
  const RETRY_MS = 2000;
  const REFUSED = [4401, 4404];
  let socket = null;
  let held = false;
  let timer = null;
  let options = null;

  function say(text) {
    document.getElementById("connection").textContent = text;
  }

  function connect() {
    timer = null;
    if (held) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const current = new WebSocket(scheme + "://" + location.host + options.path);
    socket = current;
    current.onopen = () => say(options.ended() ? "" : "● live");
    current.onmessage = (message) => options.onEvent(JSON.parse(message.data));
    current.onclose = (event) => {
      if (socket !== current) return;
      socket = null;
      if (REFUSED.includes(event.code)) {
        say("You are not allowed to watch this search; log in again.");
      } else if (options.ended() && !held) {
        say(""); // nothing more will come
      } else {
        say("reconnecting…");
        if (!timer && !held) timer = setTimeout(connect, RETRY_MS);
      }
    };
  }

  function start(settings) {
    options = settings;
    connect();
  }

  // Close the socket as a network drop would. With hold, stay offline until reconnect() (tests use
  // it to let events go by unseen, then check the page catches up).
  function drop(settings) {
    held = Boolean(settings && settings.hold);
    if (socket) socket.close();
  }

  function reconnect() {
    held = false;
    if (!socket && !timer) connect();
  }

  window.NasJob.socket = { start, drop, reconnect, isOpen: () => Boolean(socket && socket.readyState === 1) };
})();
