// Draws the dashboard's charts from the JSON the page carries (no inline script: CSP-ready).
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  // Colours with at least 3:1 contrast on white, told apart by dash pattern too.
  var palette = ["#0550ae", "#a40e26", "#116329", "#8250df", "#953800", "#1b1f24", "#bf3989", "#0a3069"];
  var dashes = [[], [6, 3], [2, 2], [8, 3, 2, 3]];
  Chart.defaults.color = "#1d2430";
  Chart.defaults.animation = false;

  function line(id, labels, series) {
    var element = document.getElementById(id);
    if (!element) { return; }
    var names = Object.keys(series);
    new Chart(element, {
      type: "line",
      data: {
        labels: labels,
        datasets: names.map(function (name, i) {
          return {
            label: name, data: series[name], spanGaps: true,
            borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
            borderDash: dashes[i % dashes.length]
          };
        })
      },
      options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } }
    });
  }

  function bars(id, labels, values, title) {
    var element = document.getElementById(id);
    if (!element) { return; }
    new Chart(element, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: title, data: values, backgroundColor: "#0550ae" }] },
      options: { responsive: true, maintainAspectRatio: false, indexAxis: "y", plugins: { legend: { display: false } } }
    });
  }

  line("chart-trend", data.trend.labels, data.trend.series);
  bars("chart-silence", data.silence.labels, data.silence.values, data.silence.title);
  bars("chart-cases", data.cases.labels, data.cases.values, data.cases.title);
  line("chart-wismo", data.wismo.labels, { "WISMO per 100 shipments": data.wismo.values });
})();
