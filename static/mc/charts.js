// Time-series charts (uPlot) that follow the theme and the container's width.
(function () {
  "use strict";
  const MC = (window.MC = window.MC || {});
  const COLORS = ["#4fb3ff", "#d29922", "#f85149", "#3fb950"];

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  /** A line chart in `container`: `series` are labels, `data` is [xs, ys1, ys2, ...];
   * `opts.height`, `opts.yAxis` (uPlot axis options: `values` to format the ticks),
   * `opts.gaps` to leave a null value a gap in its line (else the line joins its neighbours),
   * and `opts.colors` for the series' own colours. */
  function lineChart(container, series, data, opts) {
    const fg = cssVar("--muted") || "#8a96a3";
    const grid = cssVar("--line") || "#263241";
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const options = {
      width: Math.max(200, container.clientWidth),
      height: (opts && opts.height) || 200,
      scales: { x: { time: true } },
      axes: [axis, Object.assign({}, axis, { size: 50 }, opts && opts.yAxis)],
      series: [{}].concat(series.map((label, i) => ({ label: label, stroke: ((opts && opts.colors) || COLORS)[i % COLORS.length], width: 1.5, spanGaps: !(opts && opts.gaps), points: { show: false } }))),
      legend: { show: true },
    };
    let plot = new uPlot(options, data, container);
    new ResizeObserver(() => plot.setSize({ width: Math.max(200, container.clientWidth), height: options.height })).observe(container);
    document.addEventListener("mc:theme", () => {
      const current = plot.data;
      plot.destroy();
      plot = lineChart(container, series, current, opts).plot;
    });
    return { get plot() { return plot; }, setData(next) { plot.setData(next); } };
  }

  /** An inline SVG sparkline of `values` (nulls skipped). */
  function sparkline(values, width, height) {
    const w = width || 120, h = height || 24;
    const points = values.map((v, i) => [i, v]).filter(([, v]) => v != null);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "spark");
    if (points.length < 2) return svg;
    const max = Math.max(...points.map(([, v]) => v)) || 1;
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map(([i, v]) => (i / (values.length - 1)) * w + "," + (h - 2 - (v / max) * (h - 4))).join(" "));
    svg.append(line);
    return svg;
  }

  MC.charts = { lineChart: lineChart, sparkline: sparkline };
})();
