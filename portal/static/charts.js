// Daily charts drawn with Chart.js from JSON the page carries: the dashboard's #series, and each
// app's canvas.usage-chart[data-series]; calls and errors as bars, p50 / p95 latency as lines. The
// legend's words come from the canvas (data-label-*), so they are in the page's language.
(() => {
  const draw = (canvas, series) => {
    const days = series.map((point) => point.day.slice(5));
    const label = canvas.dataset;
    new Chart(canvas, {
      data: {
        labels: days,
        datasets: [
          { type: "bar", label: label.labelCalls, data: series.map((p) => p.calls), backgroundColor: "#60a5fa", yAxisID: "y" },
          { type: "bar", label: label.labelErrors, data: series.map((p) => p.errors), backgroundColor: "#f87171", yAxisID: "y" },
          { type: "line", label: label.labelP50, data: series.map((p) => p.p50_ms), borderColor: "#34d399", yAxisID: "ms" },
          { type: "line", label: label.labelP95, data: series.map((p) => p.p95_ms), borderColor: "#f59e0b", yAxisID: "ms" },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true, position: "left" }, ms: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } },
      },
    });
  };
  const start = () => {
    if (!window.Chart) return;
    const dashboard = document.getElementById("series");
    const traffic = document.getElementById("traffic");
    if (dashboard && traffic) draw(traffic, JSON.parse(dashboard.textContent));
    document.querySelectorAll("canvas.usage-chart").forEach((canvas) => draw(canvas, JSON.parse(canvas.dataset.series)));
  };
  start();
  document.addEventListener("htmx:afterSettle", () => {
    document.querySelectorAll("canvas.usage-chart").forEach((canvas) => {
      if (!Chart.getChart(canvas)) draw(canvas, JSON.parse(canvas.dataset.series));
    });
  });
})();
