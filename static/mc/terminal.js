// Terminal: call a server's tool from a form built from its input schema (or raw JSON),
// stream progress and log notifications and the result; keep a history; raw JSON-RPC.
(function () {
  "use strict";
  const { el, json, api } = MC.ui;
  const tools = JSON.parse(document.getElementById("tools-data").textContent);
  const serverId = JSON.parse(document.getElementById("server-id").textContent);
  const wanted = JSON.parse(document.getElementById("selected-tool").textContent);
  const list = document.getElementById("tool-list");
  const formHolder = document.getElementById("schema-form");
  const argsJson = document.getElementById("args-json");
  const output = document.getElementById("output");
  const runButton = document.getElementById("run");
  const historyList = document.getElementById("history");
  const HISTORY_KEY = "mc.terminal.history";
  let current = null;

  function line(kind, ...content) {
    output.append(el("div", { class: "line-" + kind }, ...content));
    output.scrollTop = output.scrollHeight;
  }

  // ---- The form from a JSON Schema: one field per property, typed; JSON for the rest.
  function field(name, schema, required, value) {
    const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
    const label = el("label", {}, name + (required ? " *" : "") + (schema.description ? " — " + schema.description : ""));
    let input;
    if (schema.enum) {
      input = el("select", { name: name }, required ? null : el("option", { value: "", text: "—" }), ...schema.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v) })));
      input.dataset.kind = "enum";
    } else if (type === "boolean") {
      input = el("select", { name: name }, el("option", { value: "", text: "—" }), el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }));
      input.dataset.kind = "boolean";
    } else if (type === "integer" || type === "number") {
      input = el("input", { name: name, type: "number", step: type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum });
      input.dataset.kind = type;
    } else if (type === "object" || type === "array") {
      input = el("textarea", { name: name, rows: 3, placeholder: type === "array" ? "[ ]" : "{ }" });
      input.dataset.kind = "json";
    } else {
      input = el("input", { name: name, type: "text", placeholder: schema.default != null ? String(schema.default) : "" });
      input.dataset.kind = "string";
    }
    if (required) input.required = true;
    if (value !== undefined) input.value = typeof value === "object" ? JSON.stringify(value) : String(value);
    input.dataset.field = name;
    label.append(input);
    return label;
  }

  function argumentsFromForm() {
    const args = {};
    formHolder.querySelectorAll("[data-field]").forEach(function (input) {
      if (input.value === "") return;
      const kind = input.dataset.kind;
      const name = input.dataset.field;
      if (kind === "integer" || kind === "number") args[name] = Number(input.value);
      else if (kind === "boolean") args[name] = input.value === "true";
      else if (kind === "enum" || kind === "json") args[name] = JSON.parse(input.value);
      else args[name] = input.value;
    });
    return args;
  }

  function select(tool, values) {
    current = tool;
    list.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === tool.name)));
    document.getElementById("tool-name").textContent = tool.name;
    document.getElementById("tool-description").textContent = tool.description || "";
    const schema = tool.input_schema || {};
    const required = new Set(schema.required || []);
    formHolder.replaceChildren(...Object.entries(schema.properties || {}).map(([name, s]) => field(name, s, required.has(name), values && values[name])));
    if (!formHolder.children.length) formHolder.append(el("p", { class: "muted", text: "This tool takes no arguments." }));
    argsJson.value = JSON.stringify(values || {}, null, 2);
    document.getElementById("raw-args").open = false;
    runButton.disabled = false;
  }

  function renderTools(filter) {
    list.replaceChildren(...tools.filter((t) => !filter || t.name.includes(filter) || (t.description || "").toLowerCase().includes(filter))
      .map((t) => el("li", {}, el("button", { type: "button", dataset: { tool: t.name }, title: t.description || "", onclick: () => select(t) }, t.name))));
    if (!tools.length) list.append(el("li", { class: "muted", text: "No tool: the server is not connected or has none." }));
  }
  document.getElementById("tool-filter").addEventListener("input", (e) => renderTools(e.target.value.toLowerCase()));

  // ---- History (this browser only).
  function history() { try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch (e) { return []; } }
  function remember(entry) {
    const items = [entry].concat(history()).slice(0, 50);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(items));
    renderHistory();
  }
  function renderHistory() {
    historyList.replaceChildren(...history().map(function (h) {
      const label = h.mode === "rpc" ? "rpc " + (h.body.method || "") : h.server + " › " + h.tool + " " + JSON.stringify(h.arguments);
      return el("li", {}, el("button", { type: "button", title: h.at, onclick: function () { recall(h); } }, label.slice(0, 80)));
    }));
    if (!historyList.children.length) historyList.append(el("li", { class: "muted", text: "Nothing run yet." }));
  }
  function recall(h) {
    if (h.mode === "rpc") { setMode("rpc"); rpcBody.value = JSON.stringify(h.body, null, 2); return; }
    if (h.server !== serverId) { location.href = "/servers/" + encodeURIComponent(h.server) + "/terminal?tool=" + encodeURIComponent(h.tool); return; }
    const tool = tools.find((t) => t.name === h.tool);
    if (tool) { setMode("form"); select(tool, h.arguments); }
  }

  // ---- Run: the gateway's streamed call (NDJSON: progress, log, then result or error).
  document.getElementById("tool-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    if (!current) return;
    let args;
    try {
      args = document.getElementById("raw-args").open ? JSON.parse(argsJson.value || "{}") : argumentsFromForm();
    } catch (err) { line("error", "Arguments are not valid JSON: " + err.message); return; }
    const timeout = Number(document.getElementById("timeout").value) || 30;
    remember({ mode: "form", server: serverId, tool: current.name, arguments: args, at: new Date().toISOString() });
    line("call", el("b", { text: "› " + serverId + "." + current.name + " " }), JSON.stringify(args));
    runButton.disabled = true;
    const started = performance.now();
    try {
      const response = await fetch("/api/mcps/" + encodeURIComponent(serverId) + "/tools/" + encodeURIComponent(current.name) + "/call?stream=1", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": MC.ui.csrf },
        body: JSON.stringify({ arguments: args, timeout: timeout }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        const error = body.error || {};
        line("error", "HTTP " + response.status + ": " + (error.field ? error.field + ": " : "") + (error.reason || ""));
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const text = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 1);
          if (text) showStreamed(JSON.parse(text), started);
        }
      }
    } catch (err) {
      line("error", String(err));
    } finally {
      runButton.disabled = false;
    }
  });

  function showStreamed(item, started) {
    if (item.type === "progress") {
      line("progress", "progress " + item.progress + (item.total != null ? "/" + item.total : "") + (item.message ? " " + item.message : ""));
    } else if (item.type === "log") {
      line("log", "log " + (item.level || "") + " " + (item.logger ? item.logger + ": " : "") + (typeof item.data === "string" ? item.data : JSON.stringify(item.data)));
    } else if (item.type === "error") {
      line("error", "error " + item.status + ": " + (item.field ? item.field + ": " : "") + item.reason);
    } else if (item.type === "result") {
      const result = item.result || {};
      const ms = Math.round(performance.now() - started);
      line(result.isError ? "error" : "result", el("b", { text: (result.isError ? "✗ tool error" : "✓ result") + " in " + ms + " ms" }));
      (result.content || []).forEach((c) => { if (c.type === "text") line("result", el("pre", { class: "result-text", text: c.text })); });
      line("result", json(result, 1));
    }
  }

  // ---- Raw JSON-RPC against /mcp: one session (initialize first), answers as JSON or SSE.
  const rpcBody = document.getElementById("rpc-body");
  const rpcSession = document.getElementById("rpc-session");
  let session = null;
  let nextId = 1;
  const example = tools[0] ? { name: serverId + "__" + tools[0].name, arguments: {} } : null;
  rpcBody.value = JSON.stringify({ jsonrpc: "2.0", id: 1, method: example ? "tools/call" : "tools/list", params: example || {} }, null, 2);

  // /mcp takes bearer tokens only: a short-lived one for this browser session, renewed when refused.
  let bearer = null;
  async function token(renew) {
    if (bearer && !renew) return bearer;
    const response = await fetch("/api/auth/session-token/", { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": MC.ui.csrf, Accept: "application/json" } });
    if (!response.ok) throw new Error("could not get a token for /mcp (HTTP " + response.status + ")");
    bearer = (await response.json()).access;
    return bearer;
  }

  async function rpcPost(message, renewed) {
    const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: "Bearer " + (await token(false)) };
    if (session) { headers["Mcp-Session-Id"] = session.id; headers["MCP-Protocol-Version"] = session.version; }
    const response = await fetch("/mcp", { method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(message) });
    if (response.status === 401 && !renewed) { await token(true); return rpcPost(message, true); }
    const type = response.headers.get("content-type") || "";
    const text = await response.text();
    const replies = type.includes("text/event-stream")
      ? text.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5)))
      : text ? [JSON.parse(text)] : [];
    return { response: response, replies: replies };
  }
  async function ensureSession() {
    if (session) return;
    const init = { jsonrpc: "2.0", id: "init", method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "mission-control-terminal", version: "1" } } };
    const { response, replies } = await rpcPost(init);
    const reply = replies.find((r) => r.id === "init");
    if (!reply || reply.error) throw new Error("initialize failed: " + JSON.stringify(reply || response.status));
    session = { id: response.headers.get("mcp-session-id"), version: reply.result.protocolVersion };
    await rpcPost({ jsonrpc: "2.0", method: "notifications/initialized" });
    rpcSession.textContent = "session " + (session.id || "(stateless)") + " · " + session.version;
  }
  document.getElementById("rpc-send").addEventListener("click", async function () {
    let body;
    try { body = JSON.parse(rpcBody.value); } catch (err) { line("error", "Not valid JSON: " + err.message); return; }
    if (body.id === undefined && !String(body.method || "").startsWith("notifications/")) body.id = ++nextId;
    remember({ mode: "rpc", body: body, at: new Date().toISOString() });
    line("call", el("b", { text: "→ " }), JSON.stringify(body));
    try {
      await ensureSession();
      const { response, replies } = await rpcPost(body);
      if (!replies.length) line(response.ok ? "log" : "error", "HTTP " + response.status + " (no body)");
      replies.forEach((r) => line(r.error ? "error" : "result", el("b", { text: "← " }), json(r, 4)));
    } catch (err) { line("error", String(err.message || err)); }
  });
  document.getElementById("rpc-reset").addEventListener("click", function () { session = null; rpcSession.textContent = ""; });

  // ---- Modes, clear, start.
  function setMode(mode) {
    document.querySelectorAll("[data-mode]").forEach((a) => a.setAttribute("aria-selected", String(a.dataset.mode === mode)));
    document.getElementById("mode-form").hidden = mode !== "form";
    document.getElementById("mode-rpc").hidden = mode !== "rpc";
  }
  document.querySelectorAll("[data-mode]").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); setMode(a.dataset.mode); }));
  document.getElementById("clear-output").addEventListener("click", () => output.replaceChildren());
  renderTools("");
  renderHistory();
  const first = tools.find((t) => t.name === wanted) || tools[0];
  if (first) select(first);
})();
