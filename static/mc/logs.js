// Log stream: stored logs are on the page; new ones arrive over logs:* with the same filter.
(function () {
  "use strict";
  const { el, time } = MC.ui;
  const list = document.getElementById("log-stream");
  const pauseButton = document.getElementById("pause");
  const note = document.getElementById("paused-note");
  const filter = JSON.parse(document.getElementById("live-filter").textContent);
  const liveOk = JSON.parse(document.getElementById("live-ok").textContent);
  const MAX = 2000;
  let paused = false;
  let held = [];

  function row(e) {
    const where = el("span", { class: "muted", text: (e.mcp_id || "") + "/" + (e.service || "") });
    if (e.thread_id) where.append(" · ", el("a", { href: "/threads/" + encodeURIComponent(e.thread_id), text: e.thread_id.slice(0, 18) }));
    return el("li", { class: "level-" + e.level, dataset: { id: e.id } },
      el("time", { text: time(e.timestamp) }), el("b", { class: "lvl", text: e.level }), where,
      el("span", { class: "msg", text: e.message + (e.exception ? "\n" + e.exception : "") }));
  }

  function show(events) {
    const empty = document.getElementById("no-logs");
    if (empty && events.length) empty.remove();
    events.forEach(function (e) {
      if (list.querySelector('[data-id="' + CSS.escape(e.id) + '"]')) return;
      list.prepend(row(e));
    });
    while (list.children.length > MAX) list.lastElementChild.remove();
  }

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (!paused) { show(held); held = []; }
    note.hidden = !paused;
    note.textContent = "paused";
  });

  if (!liveOk) return;
  // History 0: the page already shows the stored logs; the tail adds what arrives.
  MC.live.subscribe("logs:*", { filter: filter, history: 0 }, function (events, frame) {
    if (frame.snapshot) return;
    const logs = events.filter((e) => e.type === "log");
    if (paused) {
      held = held.concat(logs);
      note.textContent = "paused · " + held.length + " new";
    } else show(logs);
  });
})();
