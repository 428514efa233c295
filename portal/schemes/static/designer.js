// The scheme designer: pick source and target operations, link fields by drag and drop (HTML5), choose
// a function or a value map on a link, preview on sample records, save as a new mapping version.
// The spec it edits is the mapping engine's own format; fields it does not show are kept as they are.
(function () {
  const root = document.getElementById("designer");
  if (!root) return;
  const api = window.schemesApi;
  const esc = window.escapeHtml;
  const text = window.schemeText;
  const stateOf = window.schemeState;
  const name = root.dataset.scheme;
  const VALUE_KEYS = ["from", "const", "expr", "template", "concat"];
  const FUNCTIONS = ["", "trim", "upper", "lower", "first", "last", "length"];
  const state = { scheme: null, definition: null, spec: null, catalogue: [], samples: [], selected: null };
  const $ = (id) => document.getElementById(id);

  // Edits live only in this page until saved: leaving with some unsaved asks first (the browser's own
  // prompt; its wording is the browser's), and a save clears the mark.
  let unsaved = false;
  function changed() { unsaved = true; root.dataset.unsaved = "true"; }
  function clean() { unsaved = false; delete root.dataset.unsaved; }
  window.addEventListener("beforeunload", (event) => {
    if (!unsaved) return;
    event.preventDefault();
    event.returnValue = "";
  });

  function say(text, id = "designer-status") { $(id).textContent = text; }

  function operations(connection, role) {
    const entry = state.catalogue.find((c) => c.name === connection);
    return entry ? entry.operations.filter((op) => op.role === role) : [];
  }

  function fillSelect(select, values, chosen) {
    select.innerHTML = values.map((v) => `<option value="${esc(v)}"${v === chosen ? " selected" : ""}>${esc(v)}</option>`).join("");
  }

  function renderPickers() {
    const d = state.definition;
    const names = state.catalogue.map((c) => c.name);
    fillSelect($("source-connection"), names.filter((n) => operations(n, "source").length), d.source.connection);
    fillSelect($("source-operation"), operations(d.source.connection, "source").map((o) => o.name), d.source.operation);
    fillSelect($("target-connection"), names.filter((n) => operations(n, "target").length), d.target.connection);
    fillSelect($("target-operation"), operations(d.target.connection, "target").map((o) => o.name), d.target.operation);
  }

  function operation(role) {
    const part = role === "source" ? state.definition.source : state.definition.target;
    return operations(part.connection, role).find((o) => o.name === part.operation) || { fields: {} };
  }

  // -- fields ---------------------------------------------------------------------------------------

  function flatten(record, prefix, out) {
    for (const [key, value] of Object.entries(record || {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (Array.isArray(value)) {
        out.add(path);
        if (value.length && typeof value[0] === "object") flatten(value[0], path, out);
      } else if (value && typeof value === "object") {
        out.add(path);
        flatten(value, path, out);
      } else out.add(path);
    }
  }

  function sourceFields() {
    const found = new Set(Object.keys(operation("source").fields || {}));
    for (const step of state.definition.enrich || []) {
      const op = operations(step.connection, "enrich").find((o) => o.name === step.operation);
      found.add(step.into);
      for (const field of Object.keys((op && op.fields) || {})) found.add(`${step.into}.${field}`);
      for (const field of Object.keys(step.copy || {})) found.add(`${step.into}.${field}`);
    }
    for (const record of state.samples) flatten(record, "", found);
    return [...found].sort((a, b) => (a.includes(".") - b.includes(".")) || a.localeCompare(b));
  }

  function renderSource() {
    const filter = $("source-filter").value.trim().toLowerCase();
    const fields = sourceFields().filter((f) => !filter || f.toLowerCase().includes(filter));
    $("source-fields").innerHTML = fields
      .map((f) => `<li draggable="true" data-field="${esc(f)}" class="${f.includes(".") ? "nested" : ""}" title="${esc(f)}">${esc(f)}</li>`)
      .join("");
  }

  function linkOf(target) {
    const fields = state.spec.fields || {};
    if (target.includes(".")) {
      const [list, inner] = target.split(".", 2);
      const holder = fields[list];
      if (!holder || typeof holder !== "object" || !holder.fields) return null;
      const setting = holder.fields[inner];
      const each = typeof holder.each === "object" ? holder.each.from : holder.each;
      return describe(setting, each);
    }
    return describe(fields[target], null);
  }

  function describe(setting, each) {
    if (setting === undefined || setting === null) return null;
    const s = typeof setting === "string" ? { from: setting } : setting;
    let source = null;
    if (s.from !== undefined) {
      const from = Array.isArray(s.from) ? s.from[0] : s.from;
      source = String(from).startsWith("$") ? from : each ? `${each}.${from}` : from;
    }
    const rule = s.each ? `each ${typeof s.each === "object" ? s.each.from : s.each}` : s.expr ? "ƒ " + s.expr : s.const !== undefined ? "= " + JSON.stringify(s.const) : s.template ? "template" : "";
    const extras = [s.fn ? "fn " + [].concat(s.fn).map((f) => (typeof f === "string" ? f : Object.keys(f)[0])).join(",") : "", s.map ? "map" : "", s.lookup ? "lookup " + s.lookup : ""].filter(Boolean).join(" · ");
    return { source, rule, extras };
  }

  function renderTarget() {
    const fields = Object.keys(operation("target").fields || {});
    $("target-fields").innerHTML = fields
      .map((f) => {
        const link = linkOf(f);
        const text = link ? (link.source ? `<span class="link">← ${esc(link.source)}</span>` : "") + (link.rule ? `<span class="rule">${esc(link.rule)}</span>` : "") + (link.extras ? `<span class="rule">${esc(link.extras)}</span>` : "") : "";
        const cls = [f.includes(".") ? "nested" : "", link ? "linked" : "", state.selected === f ? "selected" : ""].join(" ");
        return `<li data-target="${esc(f)}" class="${cls}" tabindex="0">${esc(f)}${text}</li>`;
      })
      .join("");
  }

  function settingFor(target, create) {
    const fields = (state.spec.fields = state.spec.fields || {});
    if (!target.includes(".")) {
      if (typeof fields[target] === "string") fields[target] = { from: fields[target] };
      if (!fields[target] && create) fields[target] = {};
      return { holder: fields, key: target };
    }
    const [list, inner] = target.split(".", 2);
    if (!fields[list] || !fields[list].fields) {
      if (!create) return { holder: {}, key: inner };
      fields[list] = { each: null, fields: {} };
    }
    const inners = fields[list].fields;
    if (typeof inners[inner] === "string") inners[inner] = { from: inners[inner] };
    if (!inners[inner] && create) inners[inner] = {};
    return { holder: inners, key: inner, list: fields[list] };
  }

  function link(target, source) {
    const place = settingFor(target, true);
    const setting = place.holder[place.key];
    for (const key of VALUE_KEYS) delete setting[key];
    if (place.list) {
      const each = typeof place.list.each === "object" && place.list.each ? place.list.each.from : place.list.each;
      const prefix = source.includes(".") ? source.slice(0, source.lastIndexOf(".")) : null;
      if (!each && prefix) place.list.each = prefix;
      const current = typeof place.list.each === "object" && place.list.each ? place.list.each.from : place.list.each;
      setting.from = current && source.startsWith(current + ".") ? source.slice(current.length + 1) : "$parent." + source;
    } else {
      setting.from = source;
    }
    state.selected = target;
    changed();
    renderTarget();
    openEditor(target);
    say(`${target} ← ${source}`);
  }

  function openEditor(target) {
    const place = settingFor(target, false);
    const setting = place.holder[place.key];
    if (!setting) { $("link-editor").hidden = true; return; }
    $("link-editor").hidden = false;
    $("link-title").textContent = target;
    const fn = setting.fn ? [].concat(setting.fn)[0] : "";
    fillSelect($("link-fn"), FUNCTIONS, typeof fn === "string" ? fn : "");
    $("link-map").value = Object.entries(setting.map || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  }

  function applyEditor() {
    const target = state.selected;
    if (!target) return;
    const place = settingFor(target, true);
    const setting = place.holder[place.key];
    const fn = $("link-fn").value;
    if (fn) setting.fn = [fn]; else delete setting.fn;
    const pairs = $("link-map").value.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => l.split("="));
    if (pairs.length) setting.map = Object.fromEntries(pairs.map(([k, ...v]) => [k.trim(), v.join("=").trim()]));
    else delete setting.map;
    changed();
    renderTarget();
    const what = fn ? text("function", { target, fn }) : text("no_function", { target });
    say(pairs.length ? `${what} · ${text("value_map", { n: pairs.length })}` : what);
  }

  function removeLink() {
    const target = state.selected;
    const place = settingFor(target, false);
    delete place.holder[place.key];
    changed();
    $("link-editor").hidden = true;
    renderTarget();
    say(text("removed", { target }));
  }

  // -- drag and drop ----------------------------------------------------------------------------------

  $("source-fields").addEventListener("dragstart", (event) => {
    const item = event.target.closest("[data-field]");
    if (!item) return;
    event.dataTransfer.setData("text/plain", item.dataset.field);
    event.dataTransfer.effectAllowed = "link";
  });
  const targets = $("target-fields");
  targets.addEventListener("dragover", (event) => {
    const item = event.target.closest("[data-target]");
    if (!item) return;
    event.preventDefault();
    targets.querySelectorAll(".over").forEach((el) => el.classList.remove("over"));
    item.classList.add("over");
  });
  targets.addEventListener("dragleave", (event) => {
    const item = event.target.closest("[data-target]");
    if (item) item.classList.remove("over");
  });
  targets.addEventListener("drop", (event) => {
    const item = event.target.closest("[data-target]");
    if (!item) return;
    event.preventDefault();
    const source = event.dataTransfer.getData("text/plain");
    if (source) link(item.dataset.target, source);
  });
  targets.addEventListener("click", (event) => {
    const item = event.target.closest("[data-target]");
    if (!item) return;
    state.selected = item.dataset.target;
    renderTarget();
    openEditor(state.selected);
  });
  $("source-filter").addEventListener("input", renderSource);
  $("link-apply").addEventListener("click", applyEditor);
  $("link-remove").addEventListener("click", removeLink);

  // -- pickers, samples, preview, save ----------------------------------------------------------------

  function readPickers() {
    const d = state.definition;
    d.source = { ...d.source, connection: $("source-connection").value, operation: $("source-operation").value };
    d.target = { ...d.target, connection: $("target-connection").value, operation: $("target-operation").value };
  }
  for (const id of ["source-connection", "target-connection", "source-operation", "target-operation"]) {
    $(id).addEventListener("change", () => { readPickers(); renderPickers(); readPickers(); changed(); renderSource(); renderTarget(); });
  }

  async function loadSamples() {
    say(text("loading"));
    try {
      readPickers();
      state.samples = await api("POST", "/schemes/sample", { definition: state.definition, limit: 5 });
      renderSource();
      say(text("loaded", { n: state.samples.length }));
    } catch (error) { say(text("load_failed", { error: error.message })); }
  }

  async function preview() {
    if (!state.samples.length) await loadSamples();
    try {
      const result = await api("POST", "/mappings/preview", { spec: state.spec, records: state.samples });
      const ok = result.records.filter((r) => r !== null).length;
      say(text("previewed", { ok, errors: result.errors.length }));
      $("preview-out").textContent = JSON.stringify({ errors: result.errors, records: result.records.slice(0, 3) }, null, 2);
    } catch (error) {
      const issues = (error.problem && error.problem.issues) || [];
      say(text("problems", { error: error.message }));
      $("preview-out").textContent = JSON.stringify(issues, null, 2);
    }
  }

  async function save() {
    readPickers();
    try {
      // `base` is the version this spec was loaded from: the server writes no new version when the spec
      // is unchanged from it (a scheme saved for a new connection keeps naming the same mapping).
      const base = state.definition.mapping.name === state.spec.name ? state.definition.mapping.version : null;
      const saved = await api("POST", "/mappings", { spec: state.spec, comment: "designer", base });
      state.definition.mapping = { name: saved.name, version: saved.version };
      await api("PUT", `/schemes/${encodeURIComponent(name)}`, {
        definition: state.definition,
        description: state.scheme.description,
        priority: state.scheme.priority,
      });
      clean();
      $("mapping-version").textContent = `${saved.name} v${saved.version}`;
      say(text("saved", { name: saved.name, version: saved.version }));
    } catch (error) { say(text("not_saved", { error: error.message })); }
  }

  $("load-samples").addEventListener("click", loadSamples);
  $("preview").addEventListener("click", preview);
  $("save").addEventListener("click", save);

  // -- run controls -----------------------------------------------------------------

  root.querySelectorAll("[data-action]").forEach((button) =>
    button.addEventListener("click", async () => {
      // Stopping ends a run midway, and a full run reads everything again: asked first, as the portal's
      // other actions with effects are.
      const full = button.dataset.full === "true";
      if (button.dataset.action === "stop" && !confirm(text("confirm_stop"))) return;
      if (full && !confirm(text("confirm_full", { name }))) return;
      try {
        const result = await api("POST", `/schemes/${encodeURIComponent(name)}/${button.dataset.action}`, full ? { full: true } : {});
        $("action-result").classList.remove("err");
        $("action-result").textContent = result.run
          ? text(full ? "full_queued" : "queued", { run: result.run })
          : text(result.enabled ? "schedule_on" : "schedule_off");
        if (result.enabled !== undefined) {
          const status = result.enabled ? "scheduled" : "idle";
          $("scheme-status").dataset.status = status;
          $("scheme-status").textContent = stateOf(status);
        }
        refreshRuns();
      } catch (error) { $("action-result").textContent = error.message; }
    }),
  );

  // Deleting asks first, naming the scheme, then posts the page's own form in place: refused (the scheme
  // runs), the service's message, as the page words it, shows here and the edits stay; done, the list.
  const deleteForm = $("delete-scheme");
  deleteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!confirm(text("confirm_delete", { name }))) return;
    const result = $("action-result");
    try {
      const response = await fetch(deleteForm.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(deleteForm)),
      });
      if (response.redirected) {
        // Deleted: on to the list, the edits gone with the scheme. Any other place (the sign-in page, the
        // session having ended) is gone to with the edits still guarded.
        if (new URL(response.url).pathname === "/admin/schemes") clean();
        location.assign(response.url);
        return;
      }
      const answer = new DOMParser().parseFromString(await response.text(), "text/html");
      const said = answer.querySelector("#action-result") || answer.querySelector("[role=alert] p");
      result.textContent = (said && said.textContent.trim()) || `${response.status} ${response.statusText}`;
    } catch (error) {
      result.textContent = error.message;
    }
    result.classList.add("err");
    refreshRuns();
  });

  // The run history is drawn by the server and polled by htmx (templates/schemes/_runs.html): after an
  // action, ask it to redraw now rather than at its next poll.
  function refreshRuns() {
    const runs = document.getElementById("runs");
    if (runs && window.htmx) window.htmx.trigger(runs, "refresh");
  }

  async function init() {
    const [scheme, catalogue] = await Promise.all([
      api("GET", `/schemes/${encodeURIComponent(name)}`),
      api("GET", "/schemes/catalogue"),
    ]);
    state.scheme = scheme;
    state.definition = scheme.definition;
    state.catalogue = catalogue;
    const mapping = await api("GET", `/mappings/${encodeURIComponent(scheme.definition.mapping.name)}?version=${scheme.definition.mapping.version}`);
    state.spec = mapping.spec;
    $("mapping-version").textContent = `${mapping.name} v${mapping.version}`;
    renderPickers();
    renderSource();
    renderTarget();
    root.dataset.ready = "true";
  }

  init().catch((error) => say(text("scheme_failed", { error: error.message })));
})();
