// Draws the dashboard's charts from the JSON the page carries (no inline script: CSP-ready).
// Each entry names its canvas (chart-<key>), its type (line or bar), its labels and named series.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") { return; }
  var charts = JSON.parse(source.textContent);
  // Colours with at least 3:1 contrast on white, told apart by dash pattern too.
  var palette = ["#0550ae", "#a40e26", "#116329", "#8250df", "#953800", "#1b1f24", "#bf3989", "#0a3069"];
  var dashes = [[], [6, 3], [2, 2], [8, 3, 2, 3]];
  Chart.defaults.color = "#1d2430";
  Chart.defaults.animation = false;

  function draw(key, spec) {
    var element = document.getElementById("chart-" + key);
    if (!element) { return; }
    var names = Object.keys(spec.series);
    var bar = spec.type === "bar";
    new Chart(element, {
      type: bar ? "bar" : "line",
      data: {
        labels: spec.labels,
        datasets: names.map(function (name, i) {
          var colour = palette[i % palette.length];
          return bar
            ? { label: name, data: spec.series[name], backgroundColor: colour }
            : { label: name, data: spec.series[name], spanGaps: true, borderColor: colour,
                backgroundColor: colour, borderDash: dashes[i % dashes.length] };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, indexAxis: bar ? "y" : "x",
        plugins: { legend: { display: !bar || names.length > 1 } },
        scales: bar ? {} : { y: { beginAtZero: true } }
      }
    });
  }

  Object.keys(charts).forEach(function (key) { draw(key, charts[key]); });
})();
