// Thread Inspector: the stored state first, then live steps, messages, checks and logs.
(function () {
  "use strict";
  const { el, json, time, ms, status, api } = MC.ui;
  const initial = JSON.parse(document.getElementById("thread-state").textContent);
  const threadId = initial.thread.id;
  const steps = new Map(); // sequence -> step
  const messages = new Map(); // id -> message
  const openCalls = new Set(); // tool calls unfolded by the reader stay so across updates
  let thread = initial.thread;
  // The timeline comes a page at a time: the rest from the REST timeline, on demand.
  let nextSteps = initial.timeline_next;
  let stepCount = initial.step_count || 0;
  let errorCount = thread.error_count || 0; // the stored count, moved by the steps that arrive live
  const FINAL = ["complete", "error", "cancelled"];

  const waterfall = document.getElementById("waterfall");
  const toolCalls = document.getElementById("tool-calls");
  const transcript = document.getElementById("messages");
  const permissionRows = document.getElementById("permission-rows");
  const logList = document.getElementById("thread-logs");
  const statusBadge = document.getElementById("thread-status");
  const duration = document.getElementById("thread-duration");
  const currentBox = document.getElementById("thread-current");
  const errorsBox = document.getElementById("thread-errors");
  const moreButton = document.getElementById("more-steps");
  moreButton.addEventListener("click", loadMore);
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
    const total = Math.max(stepCount, ordered.length);
    document.getElementById("step-count").textContent = !total ? ""
      : ordered.length < total ? ordered.length + " of " + total + " steps" : total + " steps";
    moreButton.hidden = !nextSteps;
    if (!ordered.length) return;
    const start = Math.min(at(thread.started_at), ...ordered.map((s) => span(s)[0]));
    const end = Math.max(thread.ended_at ? at(thread.ended_at) : 0, ...ordered.map((s) => span(s)[1]), start + 1);
    const width = end - start;
    waterfall.replaceChildren(...ordered.map(function (step) {
      const [from, to] = span(step);
      const bar = el("div", { class: "wf-bar s-" + step.status, title: ms(step.duration_ms) });
      bar.style.left = ((100 * (from - start)) / width).toFixed(2) + "%";
      bar.style.width = Math.max(0.3, (100 * (to - from)) / width).toFixed(2) + "%";
      return el("div", { class: "wf-row", dataset: { sequence: step.sequence } },
        el("span", { class: "muted mono", text: "#" + step.sequence }),
        el("span", { class: "wf-type" }, status(step.step_type)),
        el("span", { class: "wf-desc", title: step.description, text: step.description || "—" }),
        el("div", { class: "wf-track" }, bar),
        el("span", { class: "mono", text: ms(step.duration_ms) }));
    }));
    renderToolCalls(ordered);
  }

  // The same value on both sides, or not named on one of them.
  function agrees(a, b) { return a === undefined || b === undefined || a === b; }

  // A call's result: the tool_result step after it, before the next tool_call, for the same
  // tool. A call reported without one (an SDK `with step`, an OTLP span, a directive's tool
  // step) carries its own outcome.
  function resultOf(call, ordered, index) {
    const d = call.details || {};
    for (let i = index + 1; i < ordered.length; i++) {
      const s = ordered[i];
      if (s.step_type === "tool_call") return null;
      const r = s.details || {};
      if (s.step_type === "tool_result" && agrees(r.tool, d.tool) && agrees(r.mcp_id, d.mcp_id)) return s;
    }
    return null;
  }

  // What became of a call: its result's status, else its own once it finished.
  function outcome(call, result) {
    if (call.status === "error" || (result && result.status === "error")) return "error";
    if (result) return result.status;
    return call.status === "pending" || call.status === "running" ? "running" : call.status;
  }

  function renderToolCalls(ordered) {
    const calls = ordered.map((s, i) => [s, i]).filter(([s]) => s.step_type === "tool_call");
    if (!calls.length) return;
    toolCalls.replaceChildren(...calls.map(function ([call, index]) {
      const d = call.details || {};
      const result = resultOf(call, ordered, index);
      const state = outcome(call, result);
      const took = result ? result.duration_ms : call.duration_ms;
      const note = state === "running" ? (FINAL.includes(thread.status) ? "no result was reported" : "waiting for the result") : ms(took);
      const box = el("details", { class: "tool-call", open: openCalls.has(call.sequence), dataset: { sequence: call.sequence, outcome: state },
        ontoggle: (e) => { if (e.target.open) openCalls.add(call.sequence); else openCalls.delete(call.sequence); } },
        el("summary", {},
          el("b", { class: "mono", text: (d.mcp_id ? d.mcp_id + "__" : "") + (d.tool || call.description) }),
          status(state),
          el("span", { class: "muted", text: note })),
        el("div", { class: "body" },
          el("div", {}, el("b", { text: "Arguments" }), json(d.arguments !== undefined ? d.arguments : d, 3)),
          result ? el("div", {}, el("b", { text: "Result" }), json(result.details, 3))
            : d.error || d.result !== undefined ? el("div", {}, el("b", { text: d.error ? "Error" : "Result" }), json(d.error || d.result, 3)) : null));
      return box;
    }));
  }

  // The step it is in now: the latest that is not pending, while it runs.
  function currentStep() {
    if (FINAL.includes(thread.status)) return null;
    let best = thread.current_step || null;
    steps.forEach(function (s) {
      if (s.status !== "pending" && (!best || s.sequence >= best.sequence)) best = s;
    });
    return best;
  }

  function renderNow() {
    const now = currentStep();
    currentBox.replaceChildren(now
      ? el("span", {}, "#" + now.sequence + " " + now.step_type + " · " + (now.description || "—") + " ", status(now.status))
      : el("span", { class: "muted", text: FINAL.includes(thread.status) ? "ended" : "no step yet" }));
    errorsBox.replaceChildren(errorCount
      ? el("span", { class: "status status-error", text: errorCount + " failed" })
      : el("span", { class: "muted", text: "none" }));
  }

  async function loadMore() {
    if (!nextSteps) return;
    moreButton.disabled = true;
    try {
      const page = await api("GET", "/api/threads/" + encodeURIComponent(threadId) + "/timeline?cursor=" + encodeURIComponent(nextSteps));
      page.results.forEach((s) => { if (!steps.has(s.sequence)) steps.set(s.sequence, s); });
      nextSteps = page.next ? new URL(page.next, location.href).searchParams.get("cursor") : null;
      renderTimeline(); renderNow();
    } finally {
      moreButton.disabled = false;
    }
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
      if (e.thread) {
        thread = e.thread;
        errorCount = thread.error_count || 0;
      }
      if (e.step_count !== undefined) stepCount = Math.max(stepCount, e.step_count);
      (e.timeline || []).forEach((s) => steps.set(s.sequence, s));
      (e.transcript || []).forEach((m) => messages.set(m.id, m));
    } else if (e.type === "thread.step") {
      const before = steps.get(e.sequence);
      if (!before) stepCount += 1;
      errorCount += (e.status === "error" ? 1 : 0) - (before && before.status === "error" ? 1 : 0);
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
  renderThread(); renderTimeline(); renderTranscript(); renderNow();
  JSON.parse(document.getElementById("thread-permissions").textContent).forEach(addPermission);

  MC.live.subscribe("thread:" + threadId, {}, function (events) {
    events.forEach(apply);
    renderThread(); renderTimeline(); renderTranscript(); renderNow();
  });
  MC.live.subscribe("permission:" + threadId, { history: 200 }, (events) => events.forEach(addPermission));
  MC.live.subscribe("logs:" + threadId, { history: 200 }, function (events, frame) {
    if (frame.snapshot) logList.replaceChildren();
    events.forEach(addLog);
    while (logList.children.length > 500) logList.lastElementChild.remove();
  });
})();
