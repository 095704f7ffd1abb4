// Live overview: one WebSocket to /ws/, subscribed to `global` and `logs:*`.
// Frames follow the contract: {type: "event"|"response"|"error", channel, payload, timestamp}.
(function () {
  "use strict";
  const state = document.getElementById("ws-state");
  const rows = document.getElementById("thread-rows");
  const stream = document.getElementById("log-stream");
  const activeCount = document.getElementById("active-count");
  const rate = document.getElementById("event-rate");
  const pauseButton = document.getElementById("pause");
  const MAX_LOGS = 200;
  let paused = false;
  let received = 0;
  let retry = 500;

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value == null ? "" : String(value);
    if (cls) el.className = cls;
    return el;
  }

  function threadRow(t) {
    let tr = rows.querySelector('tr[data-thread="' + CSS.escape(t.thread_id || t.id) + '"]');
    const empty = rows.querySelector("tr.empty");
    if (empty) empty.remove();
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.thread = t.thread_id || t.id;
      rows.prepend(tr);
    }
    tr.replaceChildren(
      text("td", tr.dataset.thread, "mono"),
      (function () { const td = document.createElement("td"); td.append(text("span", t.status || "running", "status status-" + (t.status || "running"))); return td; })(),
      text("td", t.mcp_id || "—"),
      text("td", (t.timestamp || t.started_at || "").replace("T", " ").slice(0, 19)),
      text("td", (t.user_input || "").slice(0, 60)),
    );
  }

  function onEvent(channel, event) {
    received += 1;
    if (event.type === "thread.created") {
      threadRow(event);
      activeCount.textContent = String(Number(activeCount.textContent) + 1);
    } else if (event.type === "thread.ended") {
      const tr = rows.querySelector('tr[data-thread="' + CSS.escape(event.thread_id) + '"] .status');
      if (tr) { tr.textContent = event.status; tr.className = "status status-" + event.status; }
      activeCount.textContent = String(Math.max(0, Number(activeCount.textContent) - 1));
    } else if (event.type === "threads.active") {
      activeCount.textContent = String(event.threads.length);
    } else if (event.type === "log" && !paused) {
      const li = document.createElement("li");
      li.className = "log level-" + event.level;
      li.append(text("time", (event.timestamp || "").slice(11, 19)), text("b", event.level),
        text("span", event.mcp_id + "/" + event.service, "muted"), text("span", event.message));
      stream.prepend(li);
      while (stream.children.length > MAX_LOGS) stream.lastElementChild.remove();
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/");
    ws.onopen = function () {
      retry = 500;
      state.textContent = "live";
      state.dataset.state = "live";
      ws.send(JSON.stringify({ type: "subscribe", channel: "global", request_id: "global" }));
      ws.send(JSON.stringify({ type: "subscribe", channel: "logs:*", payload: { history: 50 }, request_id: "logs" }));
    };
    ws.onmessage = function (msg) {
      const frame = JSON.parse(msg.data);
      if (frame.type === "event") frame.payload.events.forEach(function (e) { onEvent(frame.channel, e); });
      else if (frame.type === "error") console.warn("Mission Control:", frame.payload.reason);
    };
    ws.onclose = function () {
      state.textContent = "reconnecting…";
      state.dataset.state = "down";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
  });
  setInterval(function () { rate.textContent = String(received); received = 0; }, 1000);
  connect();
})();
