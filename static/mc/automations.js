// The automation builder: show the fields of the chosen trigger, add event filter rows,
// confirm a delete. The cron preview and the directive's inputs come from htmx.
(function () {
  "use strict";
  const form = document.getElementById("automation-form");
  if (form) {
    const show = function () {
      const chosen = form.querySelector("input[name=trigger]:checked");
      const trigger = chosen ? chosen.value : "";
      form.querySelectorAll("[data-when]").forEach(function (part) {
        part.hidden = !part.dataset.when.split(" ").includes(trigger);
      });
    };
    form.querySelectorAll("input[name=trigger]").forEach((radio) => radio.addEventListener("change", show));
    show();
    const add = document.getElementById("add-filter");
    const rows = document.getElementById("filter-rows");
    if (add && rows) {
      add.addEventListener("click", function () {
        const last = rows.querySelector(".filter-row:last-child");
        const row = last.cloneNode(true);
        row.querySelectorAll("input").forEach((input) => (input.value = ""));
        rows.append(row);
        row.querySelector("input").focus();
      });
    }
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (confirmed) {
    confirmed.addEventListener("submit", function (e) {
      if (!window.confirm(confirmed.dataset.confirm)) e.preventDefault();
    });
  });
})();
