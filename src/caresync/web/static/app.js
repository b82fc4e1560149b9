// CareSync page behaviour: confirmations, local times and live events. No inline scripts (CSP).
(function () {
  "use strict";

  // Destructive actions ask first: <button data-confirm="...">.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = button && button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  // Show times in the reader's own time zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (!isNaN(date)) {
        node.textContent = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
        node.title = node.getAttribute("datetime");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.target); });

  // Live events (notifications, job progress) over the WebSocket, for signed-in pages.
  function connect() {
    if (!document.body || !document.body.dataset.live) { return; }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws");
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (data.type === "notification") { toast(data.title, data.link); bumpBadge(); }
    };
    socket.onclose = function (event) { if (event.code !== 4401) { setTimeout(connect, 5000); } };
  }
  function bumpBadge() {
    var badge = document.getElementById("unread-badge");
    if (badge) { badge.textContent = String(parseInt(badge.textContent, 10) + 1); }
  }
  function toast(title, link) {
    var box = document.getElementById("live-toast");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "alert alert-info shadow";
    item.setAttribute("role", "status");
    item.textContent = title + " ";
    if (link) { var a = document.createElement("a"); a.href = link; a.textContent = "Open"; item.appendChild(a); }
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 8000);
  }
  document.addEventListener("DOMContentLoaded", connect);
})();
