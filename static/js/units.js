// Human units for counts, times and sizes, and log-scale slider stops; shared by the pages.
// Exposed as window.NasUnits so page scripts (configure, job explorer) show the same words.
(function () {
  "use strict";

  function trim(value) {
    return Number(value.toPrecision(value < 10 ? 2 : 3)).toLocaleString("en");
  }

  // 1234 -> "1.2 k", 5e6 -> "5 M"
  function count(n) {
    if (n === null || n === undefined) return "–";
    const abs = Math.abs(n);
    if (abs >= 1e9) return trim(n / 1e9) + " G";
    if (abs >= 1e6) return trim(n / 1e6) + " M";
    if (abs >= 1e3) return trim(n / 1e3) + " k";
    return String(Math.round(n));
  }

  function params(n) { return count(n) + " params"; }
  function flops(n) { return count(n) + " FLOPs"; }

  // 0.4 -> "400 µs", 2 -> "2.0 ms", 1500 -> "1.5 s"
  function milliseconds(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return trim(ms * 1000) + " µs";
    if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
    return trim(ms / 1000) + " s";
  }

  // 45 -> "45 s", 600 -> "10 min", 5400 -> "1 h 30 min"
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) {
      const rest = s % 60;
      return Math.floor(s / 60) + " min" + (rest ? " " + rest + " s" : "");
    }
    const minutes = Math.round((s % 3600) / 60);
    return Math.floor(s / 3600) + " h" + (minutes ? " " + minutes + " min" : "");
  }

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    if (n >= 1024 * 1024) return trim(n / (1024 * 1024)) + " MB";
    if (n >= 1024) return trim(n / 1024) + " KB";
    return n + " B";
  }

  function kilobytes(n) { return bytes(n * 1024); }

  // 1-2-5 stops from low to high inclusive, for sliders whose range spans decades.
  function logStops(low, high) {
    const stops = [];
    for (let decade = Math.pow(10, Math.floor(Math.log10(low))); decade <= high; decade *= 10) {
      [1, 2, 5].forEach((m) => {
        const value = Number((m * decade).toPrecision(6));
        if (value >= low && value <= high) stops.push(value);
      });
    }
    return stops;
  }

  window.NasUnits = { count, params, flops, milliseconds, duration, bytes, kilobytes, logStops };
})();
