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
  // 1.2M, 350k: token counts fit the axis.
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const tokenAxis = { values: (u, ticks) => ticks.map((v) => compact.format(v)) };
  const xs = points.map((p) => p.t);
  MC.charts.lineChart(
    document.getElementById("chart-tokens"),
    ["input tokens", "output tokens"],
    [xs, points.map((p) => p.input_tokens), points.map((p) => p.output_tokens)],
    { yAxis: tokenAxis },
  );
  // A bucket whose tokens have no price has no cost (null): a gap in the line, never a 0.
  MC.charts.lineChart(document.getElementById("chart-cost"), ["cost"], [xs, points.map((p) => p.cost)], {
    gaps: true,
  });
})();
