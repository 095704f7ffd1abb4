// Live updates over one WebSocket to /ws/, resumable across reconnects.
//
// MissionControlLive.connect() returns a socket whose subscribe(channel, payload, handlers)
// survives reconnects: event frames carry the channel's {epoch, seq}; the socket keeps
// the last per channel and, on reconnect, subscribes with payload.resume = {epoch, seq},
// so the server sends exactly the frames missed. If the server cannot (history lost or
// too old) it answers with a `resync` frame and then a fresh snapshot; handlers.onResync
// lets the page drop what it showed before the snapshot arrives.
// Frames: {type: "event"|"response"|"error"|"resync", channel, payload, timestamp, epoch?, seq?}.
(function () {
  "use strict";

  function connect(onState) {
    const subscriptions = new Map(); // channel -> {payload, handlers, at: {epoch, seq} | null}
    let ws = null;
    let retry = 500;

    function send(frame) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    }

    function subscribeFrame(channel, sub) {
      const payload = Object.assign({}, sub.payload);
      if (sub.at) payload.resume = sub.at;
      return { type: "subscribe", channel: channel, payload: payload, request_id: channel };
    }

    function onFrame(frame) {
      const sub = subscriptions.get(frame.channel);
      if (frame.type === "event" && sub) {
        // Keep the newest position (a live frame published while the snapshot was read
        // may carry a seq below the snapshot's; its events are still shown).
        if (frame.seq != null && (!sub.at || sub.at.epoch !== frame.epoch || frame.seq > sub.at.seq)) {
          sub.at = { epoch: frame.epoch, seq: frame.seq };
        }
        (sub.handlers.onEvents || function () {})(frame.payload.events, frame);
      } else if (frame.type === "resync" && sub) {
        sub.at = null;
        (sub.handlers.onResync || function () {})(frame.payload);
      } else if (frame.type === "error") {
        console.warn("Mission Control:", frame.channel || "", frame.payload.reason);
      }
    }

    function open() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + "/ws/");
      let lost = false;
      ws = socket;
      socket.onopen = function () {
        retry = 500;
        onState("live");
        subscriptions.forEach(function (sub, channel) { send(subscribeFrame(channel, sub)); });
      };
      socket.onmessage = function (msg) { onFrame(JSON.parse(msg.data)); };
      // Some runtimes report a refused connection with `error` alone, no `close`.
      socket.onerror = socket.onclose = function () {
        if (lost) return;
        lost = true;
        onState("down");
        setTimeout(open, retry);
        retry = Math.min(retry * 2, 10000);
      };
    }

    open();
    return {
      subscribe: function (channel, payload, handlers) {
        const sub = { payload: payload || {}, handlers: handlers || {}, at: null };
        subscriptions.set(channel, sub);
        send(subscribeFrame(channel, sub));
      },
      unsubscribe: function (channel) {
        subscriptions.delete(channel);
        send({ type: "unsubscribe", channel: channel });
      },
      position: function (channel) {
        const sub = subscriptions.get(channel);
        return sub && sub.at ? { epoch: sub.at.epoch, seq: sub.at.seq } : null;
      },
      send: send,
    };
  }

  window.MissionControlLive = { connect: connect };

  const state = document.getElementById("ws-state");
  if (!state) return; // a page without the live overview uses MissionControlLive itself
  const rows = document.getElementById("thread-rows");
  const stream = document.getElementById("log-stream");
  const activeCount = document.getElementById("active-count");
  const rate = document.getElementById("event-rate");
  const pauseButton = document.getElementById("pause");
  const MAX_LOGS = 200;
  let paused = false;
  let received = 0;

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

  const live = connect(function (value) {
    state.textContent = value === "live" ? "live" : "reconnecting…";
    state.dataset.state = value;
  });
  function each(channel) {
    return function (events) { events.forEach(function (e) { onEvent(channel, e); }); };
  }
  live.subscribe("global", {}, { onEvents: each("global") });
  live.subscribe("logs:*", { history: 50 }, {
    onEvents: each("logs:*"),
    onResync: function () { stream.replaceChildren(); }, // the snapshot that follows refills it
  });

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
  });
  setInterval(function () { rate.textContent = String(received); received = 0; }, 1000);
  connect();
})();
