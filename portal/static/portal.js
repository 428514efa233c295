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
