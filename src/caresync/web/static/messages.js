// CareSync messages: keep a conversation (or the list of conversations) current without reloading.
// <div data-messages-live data-refresh="/messages/ID" data-target="#messages-list" [data-thread="ID"]>
// app.js owns the WebSocket and re-dispatches each live event as a "caresync:live" DOM event; on a
// {"type": "message"} event for this thread (or any thread, on the list) the target is fetched again as
// an HTMX fragment. Handling it tells app.js (preventDefault) that the page shows the message, so the
// unread badge is refreshed after the fragment has marked it read ("caresync:unread-changed").
(function () {
  "use strict";

  function start(root) {
    var url = root.getAttribute("data-refresh");
    var selector = root.getAttribute("data-target");
    var thread = root.getAttribute("data-thread");
    var timer = null;
    var browsingOlder = new URLSearchParams(location.search).has("cursor");

    function scrollToEnd() {
      var list = document.getElementById("messages-list");
      if (list && thread) { list.scrollTop = list.scrollHeight; }
    }
    function refresh() {
      window.htmx.ajax("GET", url, { target: selector, swap: "outerHTML" }).then(function () {
        scrollToEnd();
        document.dispatchEvent(new CustomEvent("caresync:unread-changed"));
      });
    }
    document.addEventListener("caresync:live", function (event) {
      var data = event.detail || {};
      if (data.type !== "message" || browsingOlder || (thread && data.thread_id !== thread)) { return; }
      event.preventDefault();
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);  // one refresh for a burst of messages
    });
    document.addEventListener("htmx:afterSwap", function (event) {
      if (event.target && event.target.id === "thread-panel") { scrollToEnd(); }
    });
    scrollToEnd();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-messages-live]").forEach(start);
  });
})();
