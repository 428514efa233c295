// Calls to the management API from the scheme pages, with the session's CSRF token as htmx sends it.
async function schemesCall(method, path, body) {
  const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
  const response = await fetch("/admin/api" + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText);
    error.problem = data;
    throw error;
  }
  return { data, response };
}
window.schemesApi = async (method, path, body) => (await schemesCall(method, path, body)).data;
// A page of a paged list, and the queries of the pages either side as the server links them
// (Link: <...?after=7>; rel="next"): {data, links: {prev, next}}, each URLSearchParams when there.
window.schemesApi.page = async function (path) {
  const { data, response } = await schemesCall("GET", path);
  const links = {};
  for (const part of (response.headers.get("link") || "").split(",")) {
    const found = part.match(/<([^>]*)>\s*;\s*rel="?([^";]+)"?/);
    if (found) links[found[2]] = new URL(found[1], location.origin).searchParams;
  }
  return { data, links };
};
window.escapeHtml = (value) =>
  String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// What the scripts say, in the page's language (templates/schemes/_texts.html): schemeText("loaded", {n: 5}).
(function () {
  const node = document.getElementById("scheme-texts");
  const texts = node ? JSON.parse(node.textContent) : { messages: {}, states: {} };
  window.schemeText = (key, values = {}) =>
    (texts.messages[key] || key).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  window.schemeState = (value) => texts.states[value] || value;
})();
