// The job page: live state over a WebSocket (the server sends the current state on every
// (re)connect, so nothing is missed while away), elapsed time, logs on demand. The page works
// without it; this only keeps it fresh.
(function () {
  "use strict";
  var run = document.querySelector("[data-job]");
  if (!run) { return; }
  var words = JSON.parse(document.getElementById("status-words").textContent);
  var jobId = run.dataset.job;
  var shownStatus = run.dataset.status;
  var STATES = ["waiting", "queued", "running", "succeeded", "failed", "cancelled", "reused", "none"];

  function setState(el, state) {
    STATES.forEach(function (s) { el.classList.remove(s); });
    el.classList.add(state);
  }

  function applyTask(t) {
    var cell = document.querySelector('[data-task="' + t.node + ":" + t.site + '"]');
    if (cell) {
      var state = cell.querySelector("[data-state]");
      if (state) { setState(state, t.status); state.textContent = words.task[t.status] || t.status; }
      var bar = cell.querySelector("[data-progress]");
      if (bar) { bar.value = t.progress || 0; bar.hidden = t.status !== "running"; }
      var stage = cell.querySelector("[data-stage]");
      if (stage) { stage.textContent = t.stage || ""; }
    }
    var half = document.querySelector('g[data-node="' + t.node + '"] [data-site="' + t.site + '"]');
    if (half) { setState(half, t.status); }
    if (t.site === "ours") {
      var sub = document.querySelector('[data-words="' + t.node + '"]');
      if (sub) { sub.textContent = words.task[t.status] || t.status; }
    }
  }

  function apply(payload) {
    (payload.tasks || []).forEach(applyTask);
    var badge = document.querySelector("[data-testid=job-status]");
    if (badge && payload.status) {
      badge.textContent = words.job[payload.status] || payload.status;
      badge.className = "badge " + payload.status;
      badge.dataset.status = payload.status;
    }
    // A new phase brings new buttons and results: show them from the server.
    if (payload.status && payload.status !== shownStatus) {
      var settled = ["succeeded", "failed", "cancelled", "refused", "paused", "approval"];
      if (settled.indexOf(payload.status) >= 0) { window.location.reload(); }
      shownStatus = payload.status;
    }
  }

  var delay = 1000;
  function connect() {
    if (!window.WebSocket) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/jobs/" + jobId + "/");
    socket.onopen = function () { delay = 1000; };
    socket.onmessage = function (event) {
      try { apply(JSON.parse(event.data)); } catch (err) { /* a malformed hint is ignored */ }
    };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4404) { return; }
      setTimeout(connect, delay);  // reconnect; the server resends the current state
      delay = Math.min(delay * 2, 30000);
    };
  }
  if (!run.dataset.terminal) { connect(); }

  var elapsed = document.querySelector("[data-testid=elapsed]");
  if (elapsed && elapsed.dataset.running && elapsed.dataset.start) {
    var start = Number(elapsed.dataset.start) * 1000;
    var fmt = new Intl.NumberFormat(document.documentElement.lang || undefined);
    setInterval(function () {
      var s = Math.max(0, Math.round((Date.now() - start) / 1000));
      elapsed.textContent = s < 60 ? words.seconds.replace("{n}", fmt.format(s))
        : words.minutes.replace("{n}", fmt.format(Math.round(s / 60)));
    }, 1000);
  }

  document.querySelectorAll("details[data-log-url]").forEach(function (box) {
    box.addEventListener("toggle", function () {
      if (!box.open) { return; }
      fetch(box.dataset.logUrl, {credentials: "same-origin"}).then(function (r) { return r.text(); })
        .then(function (text) { box.querySelector("pre").textContent = text; });
    });
  });
})();
