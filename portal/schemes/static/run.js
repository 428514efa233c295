// A run's page: live progress while it runs (and why it waits when no worker runs), per-record results a
// page at a time (failed only on request), dead letters a page at a time with replay of one, the selected
// or all, and each one's details (error, source and mapped record) in a dialog. Pages are keyset cursors
// in the address (?records_after=..., ?letters_before=...), so the "previous" and "next" links are plain
// links; the cursors are the server's (its Link header).
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
  let openLetters = null; // the scheme's open dead letters, as the last progress read said
  let shownLetter = 0; // the letter the dialog was last opened for: a slower answer for another is dropped
  let letterOpener = null; // the row's button that opened it, where the keyboard goes back to

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

  // The server's links to the pages either side, as this page's address with their cursor in it under
  // the list's own names (<prefix>_before, <prefix>_after).
  function pager(id, links, prefix) {
    $(id).innerHTML = [["prev", "previous", "previous_page"], ["next", "next", "next_page"]]
      .filter(([rel]) => links[rel])
      .map(([rel, name, label]) => {
        const cursor = links[rel];
        const href = pageUrl({ [`${prefix}_before`]: cursor.get("before"), [`${prefix}_after`]: cursor.get("after") });
        return `<a rel="${rel}" data-testid="${prefix}-${name}" href="${esc(href)}">${esc(text(label))}</a>`;
      })
      .join(" ");
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
    openLetters = run.open_dead_letters;
    root.dataset.status = run.status;
    return run;
  }

  async function records() {
    const query = new URLSearchParams({ limit: RECORDS_PAGE });
    if ($("failed-only").checked) query.set("status", "failed");
    for (const key of ["after", "before"]) {
      if (params.get(`records_${key}`)) query.set(key, params.get(`records_${key}`));
    }
    const { data, links } = await api.page(`/runs/${runId}/records?${query}`);
    $("records-body").innerHTML = data.records
      .map((r) => `<tr data-key="${esc(r.record_key)}" data-id="${r.id}"><td class="mono">${esc(r.record_key)}</td><td class="status-${esc(r.status)}" data-testid="record-status" data-status="${esc(r.status)}">${esc(stateOf(r.status))}</td><td>${r.attempts}</td><td class="mono">${esc(JSON.stringify(r.answer))}</td><td>${esc(r.error)}</td></tr>`)
      .join("");
    pager("records-pager", links, "records");
  }

  async function deadLetters() {
    const query = new URLSearchParams({ limit: LETTERS_PAGE });
    for (const key of ["after", "before"]) {
      if (params.get(`letters_${key}`)) query.set(key, params.get(`letters_${key}`));
    }
    const { data: letters, links } = await api.page(`/schemes/${encodeURIComponent(scheme)}/dead-letters?${query}`);
    // An empty table says so, rather than showing nothing.
    $("dead-body").innerHTML = letters.length
      ? letters
        .map((d) => `<tr data-letter="${d.id}"><td><input type="checkbox" value="${d.id}" aria-label="${esc(text("select", { key: d.record_key }))}"></td><td class="mono">${esc(d.record_key)}</td><td>${esc(stateOf(d.stage))}</td><td>${esc(d.error.message || "")}</td><td class="actions"><button type="button" data-details="${d.id}" data-key="${esc(d.record_key)}" data-testid="letter-open" aria-haspopup="dialog" aria-label="${esc(text("letter_details_of", { key: d.record_key }))}">${esc(text("letter_details"))}</button><button type="button" data-replay="${d.id}" data-key="${esc(d.record_key)}">${esc(text("replay"))}</button></td></tr>`)
        .join("")
      : `<tr><td colspan="5" data-testid="dead-empty">${esc(text("no_letters"))}</td></tr>`;
    pager("dead-pager", links, "letters");
    const none = !letters.length && !links.prev && !links.next;
    $("replay-all").disabled = none;
    $("replay-selected").disabled = none;
  }

  // JSON as a person reads it: indented, Chinese as is (JSON.stringify escapes no letters); it goes in
  // as text, so nothing in a record is taken for markup.
  const pretty = (value) => JSON.stringify(value, null, 2);

  // What failed and why: the stored letter, read when asked for (a page of letters carries no records).
  // Shown as the admin API returns it, personal data included, as the records table shows answers.
  async function showLetter(id, opener) {
    const dialog = $("letter-dialog");
    shownLetter = id;
    letterOpener = opener;
    $("letter-key").textContent = opener.dataset.key;
    $("letter-body").hidden = true;
    $("letter-status").textContent = text("letter_loading");
    if (!dialog.open) dialog.showModal();
    let letter;
    try {
      letter = await api("GET", `/dead-letters/${id}`);
    } catch (error) {
      if (shownLetter === id) $("letter-status").textContent = text("letter_load_failed", { error: error.message });
      return;
    }
    if (shownLetter !== id) return;
    const error = letter.error || {};
    // The vendor's own code: in the problem of a refused call (its `vendor`), or in the vendor's answer to
    // a push (an answer with a `detail` is our problem, whose code is ours).
    const answer = error.answer || {};
    const vendor = error.vendor?.code ?? answer.vendor?.code ?? ("detail" in answer ? undefined : answer.code);
    $("letter-key").textContent = letter.record_key;
    $("letter-stage").textContent = stateOf(letter.stage);
    $("letter-code").textContent = error.code || "—";
    $("letter-vendor-code").textContent = vendor === undefined || vendor === null ? "—" : String(vendor);
    $("letter-message").textContent = error.message || "";
    $("letter-attempts").textContent = letter.attempts;
    $("letter-run").textContent = `#${letter.run}`;
    $("letter-run").href = `/admin/schemes/runs/${letter.run}`;
    $("letter-full").textContent = pretty(error);
    $("letter-source").textContent = pretty(letter.source_record);
    const unmapped = letter.mapped_record === null || letter.mapped_record === undefined;
    $("letter-mapped").hidden = unmapped;
    $("letter-mapped").textContent = unmapped ? "" : pretty(letter.mapped_record);
    $("letter-unmapped").hidden = !unmapped;
    $("letter-status").textContent = "";
    $("letter-body").hidden = false;
  }

  $("letter-close").addEventListener("click", () => $("letter-dialog").close());
  // Closed by the button or Escape: the keyboard goes back to the row's button it came from.
  $("letter-dialog").addEventListener("close", () => {
    shownLetter = 0;
    if (letterOpener && letterOpener.isConnected) letterOpener.focus();
    letterOpener = null;
  });

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
    const details = event.target.closest("[data-details]");
    if (details) { showLetter(Number(details.dataset.details), details); return; }
    const button = event.target.closest("[data-replay]");
    // A replay pushes to the target again: asked first, as the portal's other actions with effects are.
    if (button && confirm(text("confirm_replay_one", { key: button.dataset.key }))) {
      replay([Number(button.dataset.replay)]);
    }
  });
  $("replay-selected").addEventListener("click", () => {
    const ids = [...$("dead-body").querySelectorAll("input:checked")].map((box) => Number(box.value));
    // None selected would ask the API for all of them: say so instead.
    if (!ids.length) { $("replay-result").textContent = text("select_first"); return; }
    if (confirm(text("confirm_replay_selected", { n: ids.length }))) replay(ids);
  });
  $("replay-all").addEventListener("click", () => {
    const n = openLetters === null ? "" : openLetters.toLocaleString();
    if (confirm(text("confirm_replay_all", { n }))) replay([]);
  });

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
