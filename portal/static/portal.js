// Small behaviours of the portal pages: copy buttons and focus after htmx swaps.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  source.select();
  try {
    await navigator.clipboard.writeText(source.value);
  } catch {
    document.execCommand("copy"); // clipboard API needs a secure context; this works over plain http
  }
  button.dataset.copied = "true";
  button.setAttribute("aria-live", "polite");
});

document.addEventListener("htmx:afterSwap", (event) => {
  const secret = event.detail.target.querySelector("[data-testid=new-key]");
  if (secret) secret.focus();
});

// htmx leaves 4xx and 5xx answers unswapped, so a refused form would look as if nothing happened.
// An answer that holds the section the form redraws (the page again, with the error beside the
// field) is swapped in like a success; any other (an expired form, something deleted meanwhile)
// replaces the page's content, so the message is seen either way.
document.addEventListener("htmx:beforeSwap", (event) => {
  const detail = event.detail;
  if (detail.xhr.status < 400) return;
  const answer = new DOMParser().parseFromString(detail.xhr.responseText, "text/html");
  const select = detail.requestConfig.elt.closest("[hx-select]")?.getAttribute("hx-select");
  if (select && answer.querySelector(select)) {
    detail.shouldSwap = true;
    detail.isError = false;
    return;
  }
  const main = document.getElementById("main");
  const theirs = answer.querySelector("main");
  if (theirs) {
    main.replaceChildren(...Array.from(theirs.childNodes, (node) => document.importNode(node, true)));
    htmx.process(main);
  } else {
    showProblem(detail.xhr.responseText);
  }
  main.focus();
});

document.addEventListener("htmx:sendError", () => {
  showProblem(document.documentElement.lang.startsWith("zh") ? "无法连接服务器，请稍后重试。" : "The server could not be reached; try again.");
});

function showProblem(message) {
  let text = message;
  try {
    const problem = JSON.parse(message);
    text = problem.detail || problem.title || message;
  } catch {
    // not problem+json: show the text as it came
  }
  const banner = document.createElement("p");
  banner.className = "err banner";
  banner.setAttribute("role", "alert");
  banner.textContent = text; // text, never markup
  document.getElementById("main").prepend(banner);
}

// After a refused form is redrawn, put the cursor on the first field it complains about.
document.addEventListener("htmx:afterSettle", (event) => {
  if (!(event.detail.xhr && event.detail.xhr.status >= 400)) return;
  document.querySelector("#main [aria-invalid=true]")?.focus();
});

// A form with data-confirm asks before it is sent (no inline onsubmit: the CSP allows no inline code).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// A select with data-autosubmit sends its form when changed (the dashboard's day range).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
