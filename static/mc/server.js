// A server's page: its schemas as JSON trees, the usage chart, Reconnect, and its status
// kept as the API says it (each status event re-reads GET /api/mcps/{id}).
(function () {
  "use strict";
  const serverId = JSON.parse(document.getElementById("server-id").textContent);
  const api = "/api/mcps/" + encodeURIComponent(serverId);

  document.querySelectorAll("script[type='application/json']:not([id])").forEach(function (s) {
    const holder = MC.ui.el("div", { class: "json-view" }, MC.ui.json(JSON.parse(s.textContent), true));
    s.replaceWith(holder);
  });

  const series = JSON.parse(document.getElementById("usage-series").textContent);
  const chart = document.getElementById("usage-chart");
  if (chart && !chart.hidden && window.uPlot) {
    MC.charts.lineChart(chart, ["calls", "failed"], [series.t, series.calls, series.errors], {
      height: 180, colors: ["#4fb3ff", "#f85149"],
    });
  }

  const out = document.getElementById("reconnect-result");
  let reconnecting = false;
  const button = document.getElementById("reconnect");
  if (button) button.addEventListener("click", async function () {
    reconnecting = true; // before the answer: the new status may arrive first
    out.textContent = "reconnecting…";
    try { await MC.ui.api("POST", button.dataset.url); }
    catch (e) { reconnecting = false; out.textContent = (e.data && e.data.error && e.data.error.reason) || "failed"; }
  });

  function text(id, value) { const node = document.getElementById(id); if (node) node.textContent = value; }

  /** Show what the API says of the server now: one word for its status everywhere. */
  async function refresh() {
    let server;
    try { server = await MC.ui.api("GET", api); } catch (e) { return; }
    const badge = document.getElementById("server-status");
    badge.textContent = server.status;
    badge.className = "status status-" + server.status;
    text("connected-at", MC.ui.time(server.connected_at) || "—");
    text("last-seen", MC.ui.time(server.last_seen) || "never");
    text("last-error", server.last_error || "—");
    document.getElementById("last-error").classList.toggle("status-error", Boolean(server.last_error));
    // A reconnect passes through degraded (the old session let go) and ends connected,
    // or disconnected when the retries did not get it back.
    if (reconnecting && server.status === "connected") { reconnecting = false; out.textContent = "reconnected"; }
    else if (reconnecting && server.status === "disconnected") { reconnecting = false; out.textContent = server.last_error || "disconnected"; }
  }

  MC.live.subscribe("mcp:" + serverId, {}, function (events) {
    if (events.some((e) => e.type === "mcp.status" || e.type === "mcp.state")) refresh();
  });
})();
