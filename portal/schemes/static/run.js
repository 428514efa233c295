// A run's page: live progress while it runs, per-record results (failed only on request), dead letters
// with replay of one, the selected or all.
(function () {
  const root = document.getElementById("run");
  if (!root) return;
  const api = window.schemesApi;
  const esc = window.escapeHtml;
  const text = window.schemeText;
  const stateOf = window.schemeState;
  const runId = root.dataset.run;
  const scheme = root.dataset.scheme;
  const $ = (id) => document.getElementById(id);
  const ACTIVE = ["queued", "running", "stopping"];

  async function progress() {
    const run = await api("GET", `/runs/${runId}`);
    const parts = [
      stateOf(run.status),
      text("read", { n: run.pulled }),
      text("pushed", { n: run.succeeded }),
      text("unchanged", { n: run.skipped }),
      text("failed", { n: run.failed }),
    ];
    if (run.pending) parts.push(text("pending", { n: run.pending }));
    if (run.throughput) parts.push(text("rate", { n: run.throughput }));
    if (run.error) parts.push(run.error);
    $("run-progress").textContent = parts.join(" · ");
    root.dataset.status = run.status;
    return run;
  }

  async function records() {
    const status = $("failed-only").checked ? "&status=failed" : "";
    const data = await api("GET", `/runs/${runId}/records?limit=500${status}`);
    $("records-body").innerHTML = data.records
      .map((r) => `<tr data-key="${esc(r.record_key)}"><td class="mono">${esc(r.record_key)}</td><td class="status-${esc(r.status)}" data-testid="record-status" data-status="${esc(r.status)}">${esc(stateOf(r.status))}</td><td>${r.attempts}</td><td class="mono">${esc(JSON.stringify(r.answer))}</td><td>${esc(r.error)}</td></tr>`)
      .join("");
  }

  async function deadLetters() {
    const letters = await api("GET", `/schemes/${encodeURIComponent(scheme)}/dead-letters`);
    $("dead-body").innerHTML = letters
      .map((d) => `<tr data-letter="${d.id}"><td><input type="checkbox" value="${d.id}" aria-label="${esc(text("select", { key: d.record_key }))}"></td><td class="mono">${esc(d.record_key)}</td><td>${esc(stateOf(d.stage))}</td><td>${esc(d.error.message || "")}</td><td><button type="button" data-replay="${d.id}">${esc(text("replay"))}</button></td></tr>`)
      .join("");
  }

  async function replay(ids) {
    try {
      const result = await api("POST", `/schemes/${encodeURIComponent(scheme)}/replay`, { dead_letters: ids });
      $("replay-result").innerHTML = `${esc(text("replay_queued"))} <a href="/admin/schemes/runs/${result.run}">#${result.run}</a>`;
    } catch (error) { $("replay-result").textContent = error.message; }
  }

  $("failed-only").addEventListener("change", records);
  $("dead-all").addEventListener("change", (event) =>
    $("dead-body").querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = event.target.checked; }),
  );
  $("dead-body").addEventListener("click", (event) => {
    const button = event.target.closest("[data-replay]");
    if (button) replay([Number(button.dataset.replay)]);
  });
  $("replay-selected").addEventListener("click", () =>
    replay([...$("dead-body").querySelectorAll("input:checked")].map((box) => Number(box.value))),
  );
  $("replay-all").addEventListener("click", () => replay([]));

  async function tick() {
    try {
      const run = await progress();
      await records();
      if (ACTIVE.includes(run.status)) setTimeout(tick, 1000);
      else await deadLetters();
    } catch (error) { setTimeout(tick, 2000); }
  }
  tick();
})();
