// The one WebSocket of a page: /ws/, shared by every live part of it.
//
//   const sub = MC.live.subscribe("thread:T-1", {}, (events, frame) => ...);
//   sub.close();
//
// Frames follow the contract in ARCHITECTURE.md: client {type, channel, payload,
// request_id}; server {type: "event"|"response"|"error"|"resync", channel, payload,
// timestamp, epoch?, seq?}. Everything about the socket (connecting, backoff,
// resubscribing after a reconnect, what a snapshot is) lives here.
//
// Resumable: event frames carry the channel's {epoch, seq}; the last one seen per channel
// is kept and a reconnect subscribes with payload.resume = {epoch, seq}, so the server
// replays exactly the frames missed (no snapshot then). When it cannot (history lost or
// too old) it answers `resync`: handlers get ([], frame) with frame.resync = true, then
// the fresh snapshot (frame.snapshot) that replaces what the page showed.
//
// Requests (queries, commands) outlive a dropped connection: one not yet answered is sent
// again once the socket is back, with the same request_id, and is rejected ("connection
// lost") only if the socket stays down for GIVE_UP_AFTER_MS. A command carries a
// command_id unique to this page, so the server answers a re-send with the first run's
// answer instead of running it twice.
(function () {
  "use strict";
  const MC = (window.MC = window.MC || {});
  const subscriptions = new Map(); // channel -> {payload, handlers:Set}
  const pending = new Map(); // request_id -> {frame, resolve, reject, onEvent}
  const stateListeners = new Set();
  const GIVE_UP_AFTER_MS = 60000;
  // Makes command ids unique to this page load (the server remembers them per user).
  const pageId =
    window.crypto && window.crypto.randomUUID
      ? window.crypto.randomUUID()
      : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  let socket = null;
  let retry = 500;
  let counter = 0;
  let state = "connecting";
  let lostAt = null; // when the connection dropped, while it is down

  function setState(next) {
    state = next;
    const badge = document.getElementById("ws-state");
    if (badge) {
      badge.dataset.state = next;
      badge.textContent = { live: "live", connecting: "connecting…", down: "reconnecting…" }[next] || next;
    }
    stateListeners.forEach((cb) => cb(next));
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function subscribeFrame(channel, payload) {
    const sub = subscriptions.get(channel);
    const body = Object.assign({}, payload || {});
    if (sub && sub.at) body.resume = sub.at; // missed frames follow, not a snapshot
    // permission:{id} sends its snapshot only when it is not empty.
    if (sub) sub.awaitingSnapshot = !body.resume && !channel.startsWith("permission:");
    return { type: "subscribe", channel: channel, payload: body, request_id: "sub:" + channel };
  }

  function onFrame(frame) {
    const waiting = frame.request_id && pending.get(frame.request_id);
    if (waiting) {
      if (frame.type === "event") { waiting.onEvent && waiting.onEvent(frame.payload); return; }
      pending.delete(frame.request_id);
      if (frame.type === "error") waiting.reject(frame.payload);
      else waiting.resolve(frame.payload);
      return;
    }
    if (frame.type === "error") {
      console.warn("Mission Control live:", frame.channel, frame.payload && frame.payload.reason);
      return;
    }
    const sub = subscriptions.get(frame.channel);
    if (!sub) return;
    if (frame.type === "resync") {
      sub.at = null;
      sub.awaitingSnapshot = true;
      frame.resync = true;
      sub.handlers.forEach((handler) => handler([], frame));
      return;
    }
    if (frame.type !== "event") return;
    // Keep the newest position (a live frame published while the snapshot was read may
    // carry a seq below the snapshot's; its events are still shown).
    if (frame.seq != null && (!sub.at || sub.at.epoch !== frame.epoch || frame.seq > sub.at.seq)) {
      sub.at = { epoch: frame.epoch, seq: frame.seq };
    }
    // The first event frame after a subscribe is the channel's snapshot (state or history).
    frame.snapshot = sub.awaitingSnapshot;
    sub.awaitingSnapshot = false;
    const events = (frame.payload && frame.payload.events) || [];
    sub.handlers.forEach((handler) => handler(events, frame));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/");
    socket.onopen = function () {
      retry = 500;
      lostAt = null;
      setState("live");
      subscriptions.forEach((sub, channel) => send(subscribeFrame(channel, sub.payload)));
      // Unanswered requests again, as they were (a command keeps its command_id).
      pending.forEach((p) => send(p.frame));
    };
    socket.onmessage = function (message) {
      let frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      onFrame(frame);
    };
    let lost = false;
    // Some runtimes report a refused connection with `error` alone, no `close`.
    socket.onerror = socket.onclose = function () {
      if (lost) return;
      lost = true;
      setState("down");
      if (lostAt === null) lostAt = Date.now();
      else if (Date.now() - lostAt > GIVE_UP_AFTER_MS) {
        pending.forEach((p) => p.reject({ reason: "connection lost" }));
        pending.clear();
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000) * (0.8 + Math.random() * 0.4);
    };
  }

  MC.live = {
    get state() { return state; },
    /** The last {epoch, seq} seen on `channel`, or null. */
    position(channel) {
      const sub = subscriptions.get(channel);
      return sub && sub.at ? { epoch: sub.at.epoch, seq: sub.at.seq } : null;
    },
    onState(cb) { stateListeners.add(cb); cb(state); },
    /** Listen to `channel`; `handler(events, frame)` gets the snapshot first (frame.snapshot), then live batches. */
    subscribe(channel, payload, handler) {
      let sub = subscriptions.get(channel);
      if (!sub) {
        sub = { payload: payload || {}, handlers: new Set() };
        subscriptions.set(channel, sub);
        send(subscribeFrame(channel, sub.payload));
      }
      sub.handlers.add(handler);
      return {
        close() {
          sub.handlers.delete(handler);
          if (sub.handlers.size === 0) {
            subscriptions.delete(channel);
            send({ type: "unsubscribe", channel: channel });
          }
        },
      };
    },
    /** Change a subscription's payload (a log filter, say): resubscribe with it. */
    resubscribe(channel, payload) {
      const sub = subscriptions.get(channel);
      if (!sub) return;
      sub.payload = payload || {};
      sub.at = null; // a new filter starts from a fresh snapshot
      send({ type: "unsubscribe", channel: channel });
      send(subscribeFrame(channel, sub.payload));
    },
    /** A request/response exchange (query, command): resolves with the response payload.
     *  Made while the socket is down, or not answered before it drops, it is sent when it
     *  is back; a command is given a command_id (unless it has one) so it runs once. */
    request(type, channel, payload, onEvent) {
      const requestId = type + ":" + ++counter;
      const body = Object.assign({}, payload || {});
      if (type === "command" && !body.command_id) body.command_id = pageId + ":" + requestId;
      const frame = { type: type, channel: channel, payload: body, request_id: requestId };
      return new Promise(function (resolve, reject) {
        pending.set(requestId, { frame: frame, resolve: resolve, reject: reject, onEvent: onEvent });
        send(frame); // or, when the socket is down, once it is back (onopen)
      });
    },
  };

  connect();
})();
