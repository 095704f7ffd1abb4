// An execution page, live: the engine publishes `directive.execution` events on `global`
// (status changes) and on the run's thread channel (every step start and end). Each
// such event of this run fetches the page's live part again (status and step results),
// so nothing is missed between the page's render and the socket's subscription.
(function () {
  "use strict";
  const root = document.getElementById("execution");
  if (!root) return;
  const id = Number(root.dataset.execution);
  const url = root.dataset.liveUrl;

  const inputs = document.getElementById("execution-inputs");
  const inputsView = document.getElementById("inputs-view");
  if (inputs && inputsView) inputsView.append(MC.ui.json(JSON.parse(inputs.textContent), true));

  let timer = null;
  let loading = false;
  let again = false;
  let threadSub = null;

  const live = () => document.getElementById("execution-live");
  const ours = (events) => events.some((e) => e && e.type === "directive.execution" && e.execution_id === id);

  function follow() {
    const part = live();
    const thread = part ? part.dataset.thread : "";
    if (thread && !threadSub && part.dataset.final !== "true") {
      // Every step's start and end comes on the run's own thread.
      threadSub = MC.live.subscribe("thread:" + thread, {}, function (events, frame) {
        if (frame.snapshot || frame.resync || ours(events)) refresh();
      });
    }
    if (part && part.dataset.final === "true" && threadSub) {
      threadSub.close();
      threadSub = null;
    }
  }

  async function load() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      await htmx.ajax("GET", url, { target: "#execution", swap: "innerHTML" });
    } catch (e) {
      console.warn("execution: not refreshed", e);
    } finally {
      loading = false;
    }
    follow();
    if (again) { again = false; refresh(); }
  }

  // At most one fetch per 150 ms however fast steps come (a throttle, not a debounce:
  // a long run's table keeps moving).
  function refresh() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; load(); }, 150);
  }

  // The first frame (the snapshot) also refreshes: the run may have moved since the render.
  MC.live.subscribe("global", {}, function (events, frame) {
    if (frame.snapshot || frame.resync || ours(events)) refresh();
  });
  follow();
})();
