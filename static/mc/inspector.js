// Thread Inspector: the stored state first, then live steps, messages, checks and logs.
(function () {
  "use strict";
  const { el, json, time, ms, status } = MC.ui;
  const initial = JSON.parse(document.getElementById("thread-state").textContent);
  const threadId = initial.thread.id;
  const steps = new Map(); // sequence -> step
  const messages = new Map(); // id -> message
  const openCalls = new Set(); // tool calls unfolded by the reader stay so across updates
  let thread = initial.thread;

  const waterfall = document.getElementById("waterfall");
  const toolCalls = document.getElementById("tool-calls");
  const transcript = document.getElementById("messages");
  const permissionRows = document.getElementById("permission-rows");
  const logList = document.getElementById("thread-logs");
  const statusBadge = document.getElementById("thread-status");
  const duration = document.getElementById("thread-duration");
  const context = document.getElementById("thread-context");
  if (context) context.append(json(thread.execution_context, false));

  function at(iso) { return iso ? Date.parse(iso) : NaN; }

  // A result is reported when its call ended: its bar ends at its timestamp.
  function span(step) {
    const t = at(step.timestamp), d = step.duration_ms || 0;
    return step.step_type === "tool_result" ? [t - d, t] : [t, t + d];
  }

  function renderTimeline() {
    const ordered = Array.from(steps.values()).sort((a, b) => a.sequence - b.sequence);
    document.getElementById("step-count").textContent = ordered.length ? ordered.length + " steps" : "";
    if (!ordered.length) return;
    const start = Math.min(at(thread.started_at), ...ordered.map((s) => span(s)[0]));
    const end = Math.max(thread.ended_at ? at(thread.ended_at) : 0, ...ordered.map((s) => span(s)[1]), start + 1);
    const total = end - start;
    waterfall.replaceChildren(...ordered.map(function (step) {
      const [from, to] = span(step);
      const bar = el("div", { class: "wf-bar s-" + step.status, title: ms(step.duration_ms) });
      bar.style.left = ((100 * (from - start)) / total).toFixed(2) + "%";
      bar.style.width = Math.max(0.3, (100 * (to - from)) / total).toFixed(2) + "%";
      return el("div", { class: "wf-row", dataset: { sequence: step.sequence } },
        el("span", { class: "muted mono", text: "#" + step.sequence }),
        el("span", { class: "wf-type" }, status(step.step_type)),
        el("span", { class: "wf-desc", title: step.description, text: step.description || "—" }),
        el("div", { class: "wf-track" }, bar),
        el("span", { class: "mono", text: ms(step.duration_ms) }));
    }));
    renderToolCalls(ordered);
  }

  function renderToolCalls(ordered) {
    const calls = ordered.filter((s) => s.step_type === "tool_call");
    if (!calls.length) return;
    toolCalls.replaceChildren(...calls.map(function (call) {
      const d = call.details || {};
      const result = ordered.find((s) => s.step_type === "tool_result" && s.sequence > call.sequence &&
        (s.details || {}).tool === d.tool && (s.details || {}).mcp_id === d.mcp_id);
      const box = el("details", { class: "tool-call", open: openCalls.has(call.sequence), dataset: { sequence: call.sequence },
        ontoggle: (e) => { if (e.target.open) openCalls.add(call.sequence); else openCalls.delete(call.sequence); } },
        el("summary", {},
          el("b", { class: "mono", text: (d.mcp_id ? d.mcp_id + "__" : "") + (d.tool || call.description) }),
          result ? status(result.status) : status("running"),
          el("span", { class: "muted", text: result ? ms(result.duration_ms) : "waiting for the result" })),
        el("div", { class: "body" },
          el("div", {}, el("b", { text: "Arguments" }), json(d.arguments !== undefined ? d.arguments : d, 3)),
          result ? el("div", {}, el("b", { text: "Result" }), json(result.details, 3)) : null));
      return box;
    }));
  }

  function renderTranscript() {
    const ordered = Array.from(messages.values()).sort((a, b) => at(a.timestamp) - at(b.timestamp));
    if (!ordered.length) return;
    transcript.replaceChildren(...ordered.map((m) => el("article", { class: "msg-bubble role-" + m.role },
      el("header", { text: m.role + " · " + time(m.timestamp) }), el("div", { text: m.content }),
      m.metadata && Object.keys(m.metadata).length ? json(m.metadata, false) : null)));
  }

  function renderThread() {
    statusBadge.textContent = thread.status;
    statusBadge.className = "status status-" + thread.status;
    duration.textContent = thread.ended_at
      ? ms(at(thread.ended_at) - at(thread.started_at))
      : ms(Math.max(0, Date.now() - at(thread.started_at))) + " so far";
  }
  setInterval(() => { if (!thread.ended_at) renderThread(); }, 1000);

  function addPermission(p) {
    const empty = permissionRows.querySelector(".empty");
    if (empty) empty.remove();
    if (permissionRows.querySelector('[data-id="' + CSS.escape(p.id) + '"]')) return;
    permissionRows.prepend(el("tr", { dataset: { id: p.id } },
      el("td", { text: time(p.timestamp) }), el("td", { text: p.user_id || "—" }), el("td", { text: p.action }),
      el("td", { class: "mono", text: p.resource }),
      el("td", {}, status(p.granted ? "granted" : "denied"), p.escalation_detected ? el("span", { class: "status status-critical", text: "escalation" }) : null),
      el("td", { text: p.reason })));
  }

  function addLog(e) {
    logList.prepend(el("li", { class: "level-" + e.level },
      el("time", { text: time(e.timestamp) }), el("b", { class: "lvl", text: e.level }),
      el("span", { class: "muted", text: (e.mcp_id || "") + "/" + (e.service || "") }), el("span", { class: "msg", text: e.message })));
  }

  function apply(e) {
    if (e.type === "thread.state") {
      if (e.thread) thread = e.thread;
      (e.timeline || []).forEach((s) => steps.set(s.sequence, s));
      (e.transcript || []).forEach((m) => messages.set(m.id, m));
    } else if (e.type === "thread.step") {
      steps.set(e.sequence, e);
    } else if (e.type === "thread.message") {
      messages.set(e.id, e);
    } else if (e.type === "thread.started") {
      thread = Object.assign({}, thread, { user_input: e.user_input || thread.user_input });
    } else if (e.type === "thread.ended") {
      thread = Object.assign({}, thread, { status: e.status, ended_at: e.ended_at || e.timestamp });
    }
  }

  apply(Object.assign({ type: "thread.state" }, initial));
  renderThread(); renderTimeline(); renderTranscript();
  JSON.parse(document.getElementById("thread-permissions").textContent).forEach(addPermission);

  MC.live.subscribe("thread:" + threadId, {}, function (events) {
    events.forEach(apply);
    renderThread(); renderTimeline(); renderTranscript();
  });
  MC.live.subscribe("permission:" + threadId, { history: 200 }, (events) => events.forEach(addPermission));
  MC.live.subscribe("logs:" + threadId, { history: 200 }, function (events, frame) {
    if (frame.snapshot) logList.replaceChildren();
    events.forEach(addLog);
    while (logList.children.length > 500) logList.lastElementChild.remove();
  });
})();
