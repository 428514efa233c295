// Calls to the management API from the scheme pages, with the session's CSRF token as htmx sends it.
window.schemesApi = async function (method, path, body) {
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
  return data;
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
