// Dashboard: counts, recent threads, server health, events/s and latency, all live.
(function () {
  "use strict";
  const { el, status, time } = MC.ui;
  const rows = document.getElementById("thread-rows");
  const stream = document.getElementById("log-stream");
  const activeCount = document.getElementById("active-count");
  const connectedCount = document.getElementById("connected-count");
  const degradedCount = document.getElementById("degraded-count");
  const serverCount = document.getElementById("server-count");
  const rate = document.getElementById("event-rate");
  const errorRate = document.getElementById("error-rate");
  const strip = document.getElementById("health-strip");
  const pauseButton = document.getElementById("pause");
  const MAX_LOGS = 200, MAX_ROWS = 20, MAX_WATCHED = 50, BUCKET = 5, WINDOW = 60;
  let paused = false;

  // Series: minutes from the database, then one point per BUCKET seconds from live events.
  const history = JSON.parse(document.getElementById("activity-data").textContent);
  const ev = [[], []];
  const lat = [[], [], [], []];
  history.forEach((m) => {
    ev[0].push(m.t); ev[1].push(m.events / 60);
    lat[0].push(m.t); lat[1].push(m.p50); lat[2].push(m.p95); lat[3].push(m.p99);
  });
  const eventsChart = MC.charts.lineChart(document.getElementById("chart-events"), ["events/s"], ev);
  const latencyChart = MC.charts.lineChart(document.getElementById("chart-latency"), ["p50", "p95", "p99"], lat);

  // What happened in the current bucket, and per second over the last WINDOW for the error rate.
  let bucketEvents = 0, bucketDurations = [];
  const recent = []; // [seconds, events, errors]
  function count(n, errors) {
    bucketEvents += n;
    const now = Math.floor(Date.now() / 1000);
    const last = recent[recent.length - 1];
    if (last && last[0] === now) { last[1] += n; last[2] += errors; } else recent.push([now, n, errors]);
    while (recent.length && recent[0][0] < now - WINDOW) recent.shift();
  }
  function percentile(sorted, q) { return sorted.length ? sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] : null; }

  setInterval(function () {
    const now = Math.floor(Date.now() / 1000);
    const lastSecond = recent.filter((r) => r[0] === now - 1).reduce((a, r) => a + r[1], 0);
    rate.textContent = String(lastSecond);
    const totals = recent.reduce((a, r) => [a[0] + r[1], a[1] + r[2]], [0, 0]);
    if (totals[0]) errorRate.textContent = Math.round((100 * totals[1]) / totals[0]) + "%";
  }, 1000);
  setInterval(function () {
    const t = Math.floor(Date.now() / 1000);
    ev[0].push(t); ev[1].push(bucketEvents / BUCKET);
    const sorted = bucketDurations.sort((a, b) => a - b);
    lat[0].push(t); lat[1].push(percentile(sorted, 0.5)); lat[2].push(percentile(sorted, 0.95)); lat[3].push(percentile(sorted, 0.99));
    bucketEvents = 0; bucketDurations = [];
    const keep = (series) => { const cut = series[0].findIndex((x) => x >= t - 3600); if (cut > 0) series.forEach((s) => s.splice(0, cut)); };
    keep(ev); keep(lat);
    eventsChart.setData(ev); latencyChart.setData(lat);
  }, BUCKET * 1000);

  function threadRow(t) {
    const id = t.thread_id || t.id;
    const empty = rows.querySelector("tr.empty");
    if (empty) empty.remove();
    let tr = rows.querySelector('tr[data-thread="' + CSS.escape(id) + '"]');
    if (!tr) { tr = el("tr", { dataset: { thread: id } }); rows.prepend(tr); }
    tr.replaceChildren(
      el("td", {}, el("a", { class: "mono", href: "/threads/" + encodeURIComponent(id), text: id })),
      el("td", {}, status(t.status || "running")),
      el("td", { text: t.mcp_id || "—" }),
      el("td", { text: time(t.started_at || t.timestamp) }),
      el("td", { text: (t.user_input || "").slice(0, 60) }),
    );
    while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
  }

  // Step latencies come from the threads running now: watch each one's channel.
  const watched = new Map();
  function watch(id) {
    if (watched.has(id) || watched.size >= MAX_WATCHED) return;
    watched.set(id, MC.live.subscribe("thread:" + id, {}, function (events) {
      events.forEach(function (e) {
        if (e.type === "thread.step") {
          count(1, e.status === "error" ? 1 : 0);
          if (e.duration_ms != null) bucketDurations.push(e.duration_ms);
        } else if (e.type === "thread.message") count(1, 0);
      });
    }));
  }
  function unwatch(id) { const sub = watched.get(id); if (sub) { sub.close(); watched.delete(id); } }

  function serverStatus(id, value, error) {
    let chip = strip.querySelector('[data-server="' + CSS.escape(id) + '"]');
    if (!chip) {
      const note = strip.querySelector(".muted");
      if (note) note.remove();
      chip = el("a", { href: "/servers/" + encodeURIComponent(id), dataset: { server: id } }, el("span", { class: "dot" }), id);
      strip.append(chip);
      serverCount.textContent = String(strip.querySelectorAll("[data-server]").length);
    }
    chip.querySelector(".dot").className = "dot dot-" + value;
    chip.title = value + (error ? ": " + error : "");
    const dots = Array.from(strip.querySelectorAll(".dot"));
    connectedCount.textContent = String(dots.filter((d) => d.classList.contains("dot-connected")).length);
    degradedCount.textContent = String(dots.filter((d) => d.classList.contains("dot-degraded") || d.classList.contains("dot-disconnected")).length);
  }

  MC.live.subscribe("global", {}, function (events) {
    events.forEach(function (e) {
      if (e.type === "threads.active") {
        activeCount.textContent = String(e.threads.length);
        e.threads.forEach((t) => watch(t.id));
      } else if (e.type === "thread.created") {
        count(1, 0);
        threadRow(e);
        activeCount.textContent = String(Number(activeCount.textContent) + 1);
        watch(e.thread_id || e.id);
      } else if (e.type === "thread.ended") {
        count(1, e.status === "error" ? 1 : 0);
        const badge = rows.querySelector('tr[data-thread="' + CSS.escape(e.thread_id) + '"] .status');
        if (badge) { badge.textContent = e.status; badge.className = "status status-" + e.status; }
        activeCount.textContent = String(Math.max(0, Number(activeCount.textContent) - 1));
        setTimeout(() => unwatch(e.thread_id), 2000);
      } else if (e.type === "mcp.status") {
        serverStatus(e.mcp_id, e.status, e.error);
      }
    });
  });

  MC.live.subscribe("logs:*", { history: 30 }, function (events, frame) {
    events.forEach(function (e) {
      if (e.type !== "log") return;
      if (!frame.snapshot) count(1, e.level === "ERROR" ? 1 : 0);
      if (paused) return;
      stream.prepend(el("li", { class: "level-" + e.level },
        el("time", { text: time(e.timestamp) }), el("b", { class: "lvl", text: e.level }),
        el("span", { class: "muted", text: (e.mcp_id || "") + "/" + (e.service || "") }), el("span", { class: "msg", text: e.message })));
    });
    while (stream.children.length > MAX_LOGS) stream.lastElementChild.remove();
  });

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
  });
})();
