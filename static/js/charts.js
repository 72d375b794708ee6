// Draws the statistics and market pages' charts (vendored Chart.js) from the
// JSON the page embeds; the tables beside them hold the same figures.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var text = data.text;
  var green = "#2f8f5b", blue = "#1e88e5", brown = "#8d6e63";

  // Prices arrive as text (exact decimals); a month without sales has none.
  function numbers(values) {
    return values.map(function (value) { return value === null ? null : Number(value); });
  }

  var configs = {};
  if (data.years) {
    configs.years = {
      type: "bar",
      data: {
        labels: data.years.labels,
        datasets: [
          { label: text.issued, data: data.years.issued, backgroundColor: green },
          { label: text.retired, data: data.years.retired, backgroundColor: blue }
        ]
      }
    };
  }
  if (data.ecosystems) {
    configs.ecosystems = {
      type: "bar",
      data: {
        labels: data.ecosystems.labels,
        datasets: [{ label: text.sink, data: numbers(data.ecosystems.sink), backgroundColor: green }]
      },
      options: { indexAxis: "y" }
    };
  }
  // Volume (bars) and volume-weighted average price (line): every series
  // with tonnes and prices (per month, vintage, ecosystem; the market's
  // last 12 months).
  Object.keys(data).forEach(function (key) {
    var series = data[key];
    if (configs[key] || !Array.isArray(series.tonnes) || !Array.isArray(series.price)) return;
    configs[key] = {
      type: "bar",
      data: {
        labels: data[key].labels,
        datasets: [
          { label: text.tonnes, data: data[key].tonnes, backgroundColor: green, yAxisID: "y" },
          { label: text.price, data: numbers(data[key].price), type: "line", borderColor: brown, backgroundColor: brown, pointRadius: 4, yAxisID: "price" }
        ]
      },
      options: { scales: { y: { position: "left" }, price: { position: "right", grid: { drawOnChartArea: false } } } }
    };
  });

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var config = configs[canvas.dataset.chart];
    if (!config || !config.data.labels.length) { canvas.hidden = true; return; }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: true, animation: false }, config.options || {});
    new Chart(canvas, config);
  });
})();
