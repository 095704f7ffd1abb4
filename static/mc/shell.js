// The page shell: keyboard shortcuts, theme, menu, CSRF for htmx and fetch, and the small
// DOM helpers the page scripts share (MC.ui).
(function () {
  "use strict";
  const MC = (window.MC = window.MC || {});
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value == null || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    children.flat().forEach((c) => { if (c != null) node.append(c instanceof Node ? c : String(c)); });
    return node;
  }

  /** A collapsible, formatted JSON tree; `open` is how many levels start unfolded (true: 1). */
  function json(value, open) {
    const depth = open === true || open === undefined ? 1 : open === false ? 0 : open;
    if (value === null || typeof value !== "object") {
      const type = value === null ? "null" : typeof value;
      return el("span", { class: "j-" + type, text: type === "string" ? JSON.stringify(value) : String(value) });
    }
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const brackets = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    if (!entries.length) return el("span", { class: "j-empty", text: brackets.join("") });
    const details = el("details", { class: "json", open: depth > 0 });
    details.append(el("summary", { text: brackets[0] + " " + entries.length + (Array.isArray(value) ? " items" : " keys") }));
    const list = el("ul");
    entries.forEach(([key, v]) => list.append(el("li", {}, el("span", { class: "j-key", text: key + ": " }), json(v, depth - 1))));
    details.append(list, el("span", { text: brackets[1] }));
    return details;
  }

  function time(iso) { return iso ? String(iso).replace("T", " ").slice(0, 19) : ""; }
  function ms(value) {
    if (value == null) return "—";
    if (value < 1000) return Math.round(value) + " ms";
    if (value < 60000) return (value / 1000).toFixed(1) + " s";
    return Math.floor(value / 60000) + " m " + Math.round((value % 60000) / 1000) + " s";
  }
  function status(value) { return el("span", { class: "status status-" + value, text: value }); }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method: method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    if (!response.ok) throw Object.assign(new Error("HTTP " + response.status), { status: response.status, data: data });
    return data;
  }

  MC.ui = { el: el, json: json, time: time, ms: ms, status: status, api: api, csrf: csrf };

  // Turn every <pre data-json> into a collapsible tree.
  function renderJson(root) {
    root.querySelectorAll("pre[data-json]").forEach((pre) => {
      let value;
      try { value = JSON.parse(pre.textContent); } catch (e) { return; }
      const holder = el("div", { class: "json-view" }, json(value, pre.dataset.json !== "closed"));
      pre.replaceWith(holder);
    });
  }
  renderJson(document);
  document.body.addEventListener("htmx:afterSwap", (e) => renderJson(e.target));
  document.body.addEventListener("htmx:configRequest", (e) => { e.detail.headers["X-CSRFToken"] = csrf; });

  // Theme: system → light → dark, stored as the user's preference.
  const root = document.documentElement;
  const toggle = document.getElementById("theme-toggle");
  async function cycleTheme() {
    const order = ["system", "light", "dark"];
    const next = order[(order.indexOf(root.dataset.theme) + 1) % order.length];
    root.dataset.theme = next;
    if (toggle) toggle.title = "Theme: " + next + " (t)";
    document.dispatchEvent(new CustomEvent("mc:theme", { detail: next }));
    try { await api("PATCH", "/api/preferences", { theme: next }); } catch (e) { console.warn("theme not saved", e.data); }
  }
  if (toggle) toggle.addEventListener("click", cycleTheme);

  // Small screens: the navigation folds behind a button.
  const menu = document.querySelector(".menu-toggle");
  if (menu) menu.addEventListener("click", () => {
    const open = document.body.classList.toggle("nav-open");
    menu.setAttribute("aria-expanded", String(open));
  });

  // Keyboard: "g x" sequences, "/" search, "?" help, "t" theme.
  const data = document.getElementById("shortcut-data");
  const shortcuts = data ? JSON.parse(data.textContent) : {};
  let prefix = null;
  let prefixTimer = null;
  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
      if (e.key === "Escape") target.blur();
      return;
    }
    if (prefix) {
      const href = shortcuts[prefix + " " + e.key];
      prefix = null;
      clearTimeout(prefixTimer);
      if (href) { e.preventDefault(); location.href = href; }
      return;
    }
    if (e.key === "g") { prefix = "g"; prefixTimer = setTimeout(() => (prefix = null), 1200); return; }
    if (e.key === "/") {
      const search = document.querySelector("[data-page-search]") || document.getElementById("global-search");
      if (search) { e.preventDefault(); search.focus(); search.select && search.select(); }
    } else if (e.key === "?") {
      const help = document.getElementById("help");
      if (help && !help.open) help.showModal();
    } else if (e.key === "t") {
      cycleTheme();
    }
  });

  // Small behaviours the templates declare with data attributes (the Content-Security-
  // Policy allows no inline event handlers): data-select-on-focus, data-no-submit,
  // data-submit-on-change, data-go-on-change="/path/{value}" (or a prefix for the value).
  document.addEventListener("focusin", (e) => {
    if (e.target.matches && e.target.matches("[data-select-on-focus]")) e.target.select();
  });
  document.addEventListener("submit", (e) => {
    if (e.target.matches && e.target.matches("[data-no-submit]")) e.preventDefault();
  }, true);
  document.addEventListener("change", (e) => {
    const el = e.target;
    if (!el.matches) return;
    if (el.matches("[data-submit-on-change]") && el.form) {
      el.form.submit();
    } else if (el.matches("[data-go-on-change]") && el.value) {
      const target = el.dataset.goOnChange;
      const value = encodeURIComponent(el.value);
      location.href = target.includes("{value}") ? target.replace("{value}", value) : target + value;
    }
  });
})();
