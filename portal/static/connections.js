// The admin's connection form: show only the credential fields of the chosen system (all stay in the
// form without JavaScript).
(() => {
  const select = document.getElementById("f-system");
  if (!select) return;
  const sync = () => document.querySelectorAll("fieldset.credentials").forEach((set) => {
    const on = set.dataset.system === select.value;
    set.hidden = !on;
    set.querySelectorAll("input").forEach((input) => { input.disabled = !on; });
  });
  select.addEventListener("change", sync);
  sync();
})();
