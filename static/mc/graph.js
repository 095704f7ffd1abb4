// The relationship graph over /api/graph/*: filter by kind, search, click through.
(function () {
  "use strict";
  const COLORS = { server: "#4fb3ff", tool: "#3fb950", thread: "#d29922", directive: "#bc8cff", script: "#f778ba", knowledge: "#39c5cf", kiwi_directive: "#a371f7", kiwi_tool: "#db61a2", kiwi_knowledge: "#56d4dd" };
  const container = document.getElementById("graph");
  const form = document.getElementById("graph-filters");
  const search = document.getElementById("graph-search");
  const count = document.getElementById("graph-count");
  const legend = document.getElementById("graph-legend");
  Object.entries(COLORS).forEach(([kind, color]) => {
    const item = MC.ui.el("span", { text: kind });
    item.style.setProperty("--c", color);
    legend.append(item);
  });

  function pageOf(node) {
    const [kind, key] = [node.kind, node.id.slice(node.id.indexOf(":") + 1)];
    if (kind === "server") return "/servers/" + encodeURIComponent(key);
    if (kind === "tool") { const [server, tool] = key.split("/"); return "/servers/" + encodeURIComponent(server) + "/terminal?tool=" + encodeURIComponent(tool || ""); }
    if (kind === "thread") return "/threads/" + encodeURIComponent(key);
    if (kind === "directive") return "/directives/" + encodeURIComponent(key);
    if (kind === "knowledge") return "/knowledge/" + encodeURIComponent(key);
    if (kind.startsWith("kiwi_") && node.data && node.data.indexed) {
      const slash = key.indexOf("/");
      return "/kiwi/" + encodeURIComponent(key.slice(0, slash)) + "/" + kind.slice(5) + "/" + encodeURIComponent(key.slice(slash + 1));
    }
    return "/graph?focus=" + encodeURIComponent(node.name);
  }

  function fg() { return getComputedStyle(document.documentElement).getPropertyValue("--fg").trim() || "#e6e6e6"; }
  const cy = cytoscape({
    container: container,
    wheelSensitivity: 0.3,
    maxZoom: 2.5,
    minZoom: 0.05,
    style: [
      { selector: "node", style: { "background-color": "data(color)", label: "data(label)", color: fg(), "font-size": 8, "text-valign": "bottom", "text-margin-y": 2, "text-wrap": "ellipsis", "text-max-width": 90, width: 12, height: 12 } },
      { selector: "node[kind = 'server']", style: { width: 20, height: 20, shape: "round-rectangle", "font-size": 10 } },
      { selector: "node.match", style: { "border-width": 3, "border-color": "#ff0" } },
      { selector: "node.faded, edge.faded", style: { opacity: 0.15 } },
      { selector: "edge", style: { width: "mapData(weight, 1, 20, 1, 4)", "line-color": "#6b7785", "target-arrow-shape": "triangle", "target-arrow-color": "#6b7785", "curve-style": "bezier", "arrow-scale": 0.7, opacity: 0.7 } },
    ],
  });
  MC.graph = cy;
  document.addEventListener("mc:theme", () => cy.style().selector("node").style("color", fg()).update());
  cy.on("tap", "node", (e) => { location.href = e.target.data("href"); });
  cy.on("mouseover", "node", (e) => { container.title = e.target.data("kind") + ": " + e.target.data("name") + (e.target.data("description") ? "\n" + e.target.data("description") : ""); });

  async function load() {
    const kinds = Array.from(form.querySelectorAll("input[name=kind]:checked")).map((i) => i.value);
    if (!kinds.length) { cy.elements().remove(); count.textContent = "(nothing selected)"; return; }
    const threadLimit = Number(document.getElementById("thread-limit").value) || 0;
    const others = kinds.filter((k) => k !== "thread");
    const requests = [];
    if (others.length) requests.push(MC.ui.api("GET", "/api/graph/entities?limit=10000&kind=" + others.join(",")));
    if (kinds.includes("thread") && threadLimit > 0) requests.push(MC.ui.api("GET", "/api/graph/entities?kind=thread&limit=" + threadLimit));
    requests.push(MC.ui.api("GET", "/api/graph/relationships?limit=10000"));
    const answers = await Promise.all(requests);
    const edges = answers.pop().results;
    const nodes = answers.flatMap((a) => a.results);
    const ids = new Set(nodes.map((n) => n.id));
    cy.elements().remove();
    cy.add(nodes.map((n) => ({ group: "nodes", data: { id: n.id, kind: n.kind, name: n.name, label: n.kind === "thread" ? n.name.slice(0, 14) : n.name, description: n.description || n.title || "", color: COLORS[n.kind] || "#888", href: pageOf(n) } })));
    cy.add(edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map((e, i) => ({ group: "edges", data: { id: "e" + i, source: e.source, target: e.target, kind: e.kind, weight: e.weight || 1 } })));
    count.textContent = "(" + cy.nodes().length + " nodes, " + cy.edges().length + " edges)";
    cy.layout({ name: "cose", animate: false, nodeRepulsion: 9000, idealEdgeLength: 60, numIter: 1500, padding: 40, componentSpacing: 90 }).run();
    if (cy.zoom() > 1.6) { cy.zoom(1.6); cy.center(); }
    highlight();
  }

  function highlight() {
    const text = search.value.trim().toLowerCase();
    cy.elements().removeClass("match faded");
    if (!text) return;
    const matches = cy.nodes().filter((n) => n.data("name").toLowerCase().includes(text));
    if (!matches.length) return;
    cy.elements().addClass("faded");
    const around = matches.closedNeighborhood();
    around.removeClass("faded");
    matches.addClass("match");
    cy.fit(around, 40);
  }

  form.addEventListener("change", (e) => { if (e.target.name === "kind" || e.target.id === "thread-limit") load(); });
  search.addEventListener("input", highlight);
  search.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const match = cy.nodes(".match");
    if (match.length === 1) location.href = match.data("href");
  });
  document.getElementById("graph-fit").addEventListener("click", () => cy.fit(undefined, 30));
  load().catch((err) => { count.textContent = "could not load the graph: " + (err.status || err); });
})();
