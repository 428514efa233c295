// The new-scheme form (schemes/list.html): each operation select offers only the operations of the
// connection chosen beside it, as the designer's selects do. Without this script the form still works:
// every connection's operations are listed under its name, and a mismatch is refused by the server.
(function () {
  const form = document.getElementById("new-scheme");
  if (!form) return;
  for (const role of ["source", "target"]) {
    const connection = document.getElementById(`f-${role}_connection`);
    const operation = document.getElementById(`f-${role}_operation`);
    if (!connection || !operation) continue;
    const narrow = () => {
      let chosen = null;
      for (const group of operation.querySelectorAll("optgroup")) {
        const mine = group.dataset.connection === connection.value;
        group.hidden = !mine;
        group.disabled = !mine;
        if (mine) chosen = group;
      }
      // Keep the operation picked when it is the chosen connection's, else take that connection's first.
      const picked = operation.selectedOptions[0];
      if (chosen && (!picked || picked.parentElement !== chosen)) {
        const first = chosen.querySelector("option");
        if (first) first.selected = true;
      }
    };
    connection.addEventListener("change", narrow);
    narrow();
  }
})();
