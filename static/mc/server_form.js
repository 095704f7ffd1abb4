// The server form: show the fields of the chosen transport (command for stdio, URL for HTTP).
(function () {
  "use strict";
  const form = document.getElementById("server-form");
  if (!form) return;
  const transport = form.querySelector("select[name=transport]");
  function show() {
    form.querySelectorAll("fieldset[data-transport]").forEach(function (set) {
      const on = set.dataset.transport.split(" ").indexOf(transport.value) >= 0;
      set.hidden = !on;
      set.disabled = !on; // a hidden field is not sent (nor tested)
    });
  }
  transport.addEventListener("change", show);
  show();
})();
