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
      // Pages may handle any event (cancelling it when they show it themselves, e.g. an open conversation).
      var live = new CustomEvent("caresync:live", { detail: data, cancelable: true });
      var unhandled = document.dispatchEvent(live);
      // A job's progress, pushed to its owner: fragments that follow that job (data-job-id) refresh at
      // once; their slower polling remains for everyone else watching.
      if (data.type === "job" && window.htmx) {
        document.querySelectorAll('[data-job-id="' + data.id + '"]').forEach(function (element) {
          window.htmx.trigger(element, "job-update");
        });
      }
      if (data.type === "message" && unhandled) {
        toast("New message", "/messages/" + encodeURIComponent(data.thread_id));
        refreshMessagesBadge();
      }
    };
    socket.onclose = function (event) { if (event.code !== 4401) { setTimeout(connect, 5000); } };
  }
  function bumpBadge() {
    var badge = document.getElementById("unread-badge");
    if (badge) { badge.textContent = String(parseInt(badge.textContent, 10) + 1); }
  }
  // The unread-messages badge on "Messages": loaded when the page did not render it, refreshed when a
  // message arrives or a page marks a conversation read.
  function refreshMessagesBadge() {
    var badge = document.getElementById("messages-badge");
    if (!badge) { return; }
    fetch("/api/v1/care/unread", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        badge.textContent = String(body.unread);
        badge.hidden = !body.unread;
      })
      .catch(function () { /* the badge is a hint; the list is the truth */ });
  }
  document.addEventListener("caresync:unread-changed", refreshMessagesBadge);
  document.addEventListener("DOMContentLoaded", function () {
    var badge = document.getElementById("messages-badge");
    if (badge && badge.hasAttribute("data-load")) { refreshMessagesBadge(); }
  });
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
  // Copy buttons (<button data-copy="#field" hidden>): shown only where the clipboard API works.
  document.addEventListener("DOMContentLoaded", function () {
    if (!navigator.clipboard) { return; }
    document.querySelectorAll("button[data-copy]").forEach(function (button) { button.hidden = false; });
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) { return; }
    navigator.clipboard.writeText(field.value).then(function () { button.textContent = "Copied"; });
  });
  document.addEventListener("DOMContentLoaded", connect);
})();
