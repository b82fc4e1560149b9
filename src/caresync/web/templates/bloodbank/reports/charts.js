// Blood bank reports: draws the page's charts from its JSON data block (no inline scripts: CSP).
(function () {
  "use strict";
  var GROUP_COLOURS = {
    "O-": "#d63939", "O+": "#f76707", "A-": "#f59f00", "A+": "#74b816",
    "B-": "#0ca678", "B+": "#17a2b8", "AB-": "#4263eb", "AB+": "#ae3ec9", "untyped": "#868e96"
  };

  function bar(id, labels, datasets, stacked) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  function draw() {
    var source = document.getElementById("report-charts");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    bar("chart-utilisation", data.months, [
      { label: "Issued", data: data.issued, backgroundColor: "#206bc4" },
      { label: "Transfused", data: data.transfused, backgroundColor: "#2fb344" }
    ], false);
    bar("chart-donations", data.months, data.donations.map(function (series) {
      return { label: series.group, data: series.counts, backgroundColor: GROUP_COLOURS[series.group] };
    }), true);
    bar("chart-stock", data.groups, [
      { label: "Available", data: data.stock.available, backgroundColor: "#2fb344" },
      { label: "Reserved", data: data.stock.reserved, backgroundColor: "#f59f00" },
      { label: "Quarantined", data: data.stock.quarantined, backgroundColor: "#868e96" }
    ], true);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
