// Daily charts from the JSON the page carries (#series): calls and errors, and p50 / p95 latency.
(() => {
  const source = document.getElementById("series");
  if (!source || !window.Chart) return;
  const series = JSON.parse(source.textContent);
  const days = series.map((point) => point.day.slice(5));
  const draw = (id, type, datasets) => {
    const canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, { type, data: { labels: days, datasets }, options: { maintainAspectRatio: false, animation: false } });
  };
  draw("traffic", "bar", [
    { label: "calls", data: series.map((p) => p.calls), backgroundColor: "#60a5fa" },
    { label: "errors", data: series.map((p) => p.errors), backgroundColor: "#f87171" },
  ]);
  draw("latency", "line", [
    { label: "p50 ms", data: series.map((p) => p.p50_ms), borderColor: "#34d399" },
    { label: "p95 ms", data: series.map((p) => p.p95_ms), borderColor: "#f59e0b" },
  ]);
})();
