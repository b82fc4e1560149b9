// CareSync analytics: draws each <canvas data-chart="ID"> from the Chart.js configuration in the JSON block
// <script type="application/json" id="ID"> next to it (no inline scripts: CSP). Runs on page load and on
// every HTMX swap (the dashboard's sections are fragments); charts of replaced fragments are destroyed.
(function () {
  "use strict";

  var DEFAULTS = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } }
  };

  function merge(target, source) {
    Object.keys(source).forEach(function (key) {
      var value = source[key];
      if (value && typeof value === "object" && !Array.isArray(value)) {
        target[key] = merge(target[key] && typeof target[key] === "object" ? target[key] : {}, value);
      } else {
        target[key] = value;
      }
    });
    return target;
  }

  function draw(root) {
    if (!window.Chart) { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) { return; }
      var existing = window.Chart.getChart(canvas);
      if (existing) { existing.destroy(); }
      var config = JSON.parse(source.textContent);
      config.options = merge(merge({}, DEFAULTS), config.options || {});
      // datasets marked "legend": false (the lower edge of an interval band) stay out of the legend
      config.options.plugins.legend.labels.filter = function (item) {
        return config.data.datasets[item.datasetIndex].legend !== false;
      };
      new window.Chart(canvas, config);
    });
  }

  function destroy(root) {
    if (!window.Chart || !root) { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) { chart.destroy(); }
    });
  }

  document.addEventListener("htmx:beforeSwap", function (event) { destroy(event.detail.target); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.elt || document); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
})();
