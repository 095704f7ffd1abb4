// The usage page: charts of tokens and cost per bucket, and the window selector.
(function () {
  "use strict";
  const MC = window.MC;
  const form = document.getElementById("usage-window");
  const select = document.getElementById("window");
  if (form && select) select.addEventListener("change", () => form.submit());

  const source = document.getElementById("usage-series");
  if (!source) return;
  const points = JSON.parse(source.textContent);
  const xs = points.map((p) => p.t);
  MC.charts.lineChart(
    document.getElementById("chart-tokens"),
    ["input tokens", "output tokens"],
    [xs, points.map((p) => p.input_tokens), points.map((p) => p.output_tokens)],
  );
  // A bucket whose tokens have no price has no cost (null): no point there, never a 0.
  MC.charts.lineChart(document.getElementById("chart-cost"), ["cost"], [xs, points.map((p) => p.cost)]);
})();
