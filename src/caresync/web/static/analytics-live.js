// CareSync analytics: keeps the dashboard current without a reload. app.js relays every WebSocket event as
// a "caresync:live" DOM event; on {"type": "analytics.encounter"} for an organisation the page covers
// (data-organisations on [data-analytics-live]), the live sections are fetched again (HTMX: each listens
// for "analytics-refresh" on the body) and the "updated" note says when. A burst of events makes one
// refresh.
(function () {
  "use strict";

  function start(root) {
    var organisations = (root.getAttribute("data-organisations") || "").split(",").filter(Boolean);
    var note = document.querySelector("[data-analytics-updated]");
    var timer = null;
    var updatedAt = null;

    function describe() {
      if (!note || !updatedAt) { return; }
      var minutes = Math.floor((Date.now() - updatedAt) / 60000);
      note.textContent = minutes < 1 ? "Updated just now" : "Updated " + minutes + " min ago";
      note.title = new Date(updatedAt).toLocaleTimeString();
    }
    function refresh() {
      document.body.dispatchEvent(new CustomEvent("analytics-refresh"));
      updatedAt = Date.now();
      root.setAttribute("data-refreshes", String(parseInt(root.getAttribute("data-refreshes") || "0", 10) + 1));
      describe();
    }
    document.addEventListener("caresync:live", function (event) {
      var data = event.detail || {};
      if (data.type !== "analytics.encounter") { return; }
      if (organisations.length && organisations.indexOf(data.organisation_id) < 0) { return; }
      event.preventDefault();  // shown here: no toast needed
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
    setInterval(describe, 30000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-analytics-live]").forEach(start);
  });
})();
