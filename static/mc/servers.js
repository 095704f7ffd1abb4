// The server list: status changes arrive on `global` as mcp.status events.
(function () {
  "use strict";
  MC.live.subscribe("global", {}, function (events) {
    events.forEach(function (e) {
      if (e.type !== "mcp.status") return;
      const badge = document.querySelector('tr[data-server="' + CSS.escape(e.mcp_id) + '"] [data-status]');
      if (badge) { badge.textContent = e.status; badge.className = "status status-" + e.status; }
    });
  });
})();
