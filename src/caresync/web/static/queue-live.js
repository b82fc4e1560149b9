// CareSync clinic queue: keep a page's live part current from a WebSocket, without reloading.
// <div data-queue-live data-ws="/ws/queue/ID" data-refresh="/queue/ID" data-target="#queue-console">
// On each {"type": "queue"} event the target is fetched again (HTMX, as a fragment) and swapped in; a
// refresh waits while someone is typing or choosing inside it, or has changed a field they have not sent
// yet (for up to 20 s). Waits also tick on once a minute.
(function () {
  "use strict";

  function start(root) {
    var wsPath = root.getAttribute("data-ws");
    var url = root.getAttribute("data-refresh");
    var selector = root.getAttribute("data-target");
    var pending = false;
    var timer = null;
    var opened = false;
    var editedAt = 0;

    function inside(node) {
      var target = document.querySelector(selector);
      return Boolean(target && node && target.contains(node));
    }
    function busy() {
      var active = document.activeElement;
      var typing = inside(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
      return typing || Date.now() - editedAt < 20000;
    }
    ["input", "change"].forEach(function (name) {
      document.addEventListener(name, function (event) { if (inside(event.target)) { editedAt = Date.now(); } });
    });
    document.addEventListener("htmx:beforeSwap", function (event) {
      // a refresh that arrives while someone started typing waits, rather than wipe what they typed
      var config = event.detail.requestConfig;
      if (config && config.verb === "get" && config.path === url && busy()) {
        event.detail.shouldSwap = false;
        pending = true;
      }
    });
    document.addEventListener("htmx:beforeRequest", function (event) {
      // a form being sent gets its own fresh fragment back: nothing left unsent
      if (inside(event.target) && event.detail.requestConfig.verb !== "get") { editedAt = 0; }
    });
    function refresh() {
      if (busy()) { pending = true; return; }
      pending = false;
      window.htmx.ajax("GET", url, { target: selector, swap: "outerHTML" });
    }
    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);  // one refresh for a burst of events
    }
    document.addEventListener("focusout", function () { if (pending) { setTimeout(refresh, 300); } });
    setInterval(function () { if (pending) { refresh(); } }, 5000);

    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + wsPath);
      socket.onopen = function () {
        root.setAttribute("data-connected", "1");
        if (opened) { schedule(); }  // catch up on what happened while disconnected
        opened = true;
      };
      socket.onmessage = function (message) {
        var data = JSON.parse(message.data);
        if (data.type === "queue") { schedule(); }
      };
      socket.onclose = function (event) {
        root.removeAttribute("data-connected");
        if (event.code !== 4401 && event.code !== 4403) { setTimeout(connect, 3000); }
      };
    }
    setInterval(schedule, 60000);
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-queue-live]").forEach(start);
  });
})();
