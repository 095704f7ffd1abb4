// "Save view": the filters of a list's form become a saved view (/api/views).
(function () {
  "use strict";
  document.querySelectorAll("form[data-save-view]").forEach(function (form) {
    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      const source = document.querySelector(form.dataset.filtersFrom);
      const filters = {};
      new FormData(source).forEach(function (value, key) {
        if (value === "") return;
        filters[key] = filters[key] ? filters[key] + "," + value : value;
      });
      const result = form.querySelector(".save-view-result");
      const name = form.elements.name.value.trim();
      try {
        const view = await MC.ui.api("POST", "/api/views", { name: name, view_config: { kind: form.dataset.kind, filters: filters } });
        result.textContent = "Saved.";
        location.href = location.pathname + "?view=" + view.id;
      } catch (err) {
        const data = err.data || {};
        result.textContent = Object.entries(data).map(([k, v]) => k + ": " + [].concat(v).join(" ")).join("; ") || "Not saved.";
      }
    });
  });
})();
