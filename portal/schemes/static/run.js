// A run's page: live progress while it runs (and why it waits when no worker runs), per-record results a
// page at a time (failed only on request), dead letters a page at a time with replay of one, the selected
// or all. Pages are keyset cursors in the address (?records_after=..., ?letters_before=...), so the
// "previous" and "next" links are plain links.
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
  const RECORDS_PAGE = 100;
  const LETTERS_PAGE = 50;
  const params = new URLSearchParams(location.search);

  // This page's address with some parameters changed (null: removed).
  function pageUrl(changes) {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) next.delete(key);
      else next.set(key, String(value));
    }
    const query = next.toString();
    return location.pathname + (query ? `?${query}` : "");
  }

  function pager(id, previous, next, names) {
    const links = [];
    if (previous !== null) links.push(`<a rel="prev" data-testid="${names.prefix}-previous" href="${esc(pageUrl({ [names.before]: previous, [names.after]: null }))}">${esc(text("previous_page"))}</a>`);
    if (next !== null) links.push(`<a rel="next" data-testid="${names.prefix}-next" href="${esc(pageUrl({ [names.after]: next, [names.before]: null }))}">${esc(text("next_page"))}</a>`);
    $(id).innerHTML = links.join(" ");
  }

  // The notice follows the run live; the server picks the age's unit (silent_for), this only says it.
  function notice(waiting) {
    const box = $("worker-notice");
    if (!box) return;
    box.hidden = !waiting;
    if (!waiting) return;
    const silent = waiting.silent_for;
    box.textContent = silent === null
      ? text("no_worker_yet")
      : text("no_worker", { age: text(`age_${silent.unit}`, { n: silent.n }) });
  }

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
    notice(run.waiting);
    root.dataset.status = run.status;
    return run;
  }

  async function records() {
    const query = new URLSearchParams({ limit: RECORDS_PAGE });
    if ($("failed-only").checked) query.set("status", "failed");
    for (const key of ["after", "before"]) {
      if (params.get(`records_${key}`)) query.set(key, params.get(`records_${key}`));
    }
    const data = await api("GET", `/runs/${runId}/records?${query}`);
    $("records-body").innerHTML = data.records
      .map((r) => `<tr data-key="${esc(r.record_key)}" data-id="${r.id}"><td class="mono">${esc(r.record_key)}</td><td class="status-${esc(r.status)}" data-testid="record-status" data-status="${esc(r.status)}">${esc(stateOf(r.status))}</td><td>${r.attempts}</td><td class="mono">${esc(JSON.stringify(r.answer))}</td><td>${esc(r.error)}</td></tr>`)
      .join("");
    pager("records-pager", data.previous, data.next, { prefix: "records", after: "records_after", before: "records_before" });
  }

  async function deadLetters() {
    // One more than a page is asked for: whether it came says if there is a page beyond.
    const query = new URLSearchParams({ limit: LETTERS_PAGE + 1 });
    const before = params.get("letters_before");
    const after = params.get("letters_after");
    if (before) query.set("before", before);
    else if (after) query.set("after", after);
    let letters = await api("GET", `/schemes/${encodeURIComponent(scheme)}/dead-letters?${query}`);
    const more = letters.length > LETTERS_PAGE;
    letters = before ? letters.slice(more ? 1 : 0) : letters.slice(0, LETTERS_PAGE);
    $("dead-body").innerHTML = letters
      .map((d) => `<tr data-letter="${d.id}"><td><input type="checkbox" value="${d.id}" aria-label="${esc(text("select", { key: d.record_key }))}"></td><td class="mono">${esc(d.record_key)}</td><td>${esc(stateOf(d.stage))}</td><td>${esc(d.error.message || "")}</td><td><button type="button" data-replay="${d.id}">${esc(text("replay"))}</button></td></tr>`)
      .join("");
    const first = letters.length ? letters[0].id : null;
    const last = letters.length ? letters[letters.length - 1].id : null;
    const previous = before ? (more ? first : null) : (after ? first : null);
    const next = before ? last : (more ? last : null);
    pager("dead-pager", previous, next, { prefix: "letters", after: "letters_after", before: "letters_before" });
  }

  async function replay(ids) {
    try {
      const result = await api("POST", `/schemes/${encodeURIComponent(scheme)}/replay`, { dead_letters: ids });
      $("replay-result").innerHTML = `${esc(text("replay_queued"))} <a href="/admin/schemes/runs/${result.run}">#${result.run}</a>`;
    } catch (error) { $("replay-result").textContent = error.message; }
  }

  $("failed-only").checked = params.get("failed") === "1";
  $("failed-only").addEventListener("change", () => {
    // Another list: its pages start again from the first.
    params.delete("records_after");
    params.delete("records_before");
    if ($("failed-only").checked) params.set("failed", "1");
    else params.delete("failed");
    history.replaceState(null, "", pageUrl({}));
    records();
  });
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
