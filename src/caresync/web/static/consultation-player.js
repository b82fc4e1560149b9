// Plays the part of the recording a transcript segment or a note sentence came from ([data-play] start,
// [data-until] end, in seconds) and highlights the segments. No inline scripts (CSP).
(function () {
  "use strict";
  var audio = document.getElementById("consultation-audio");
  if (!audio) { return; }
  var until = null;

  function highlight(indexes) {
    document.querySelectorAll("[data-segment].active").forEach(function (node) { node.classList.remove("active"); });
    indexes.forEach(function (index) {
      var node = document.getElementById("segment-" + index);
      if (node) { node.classList.add("active"); node.scrollIntoView({ block: "nearest" }); }
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-play]");
    if (!target) { return; }
    event.preventDefault();
    var indexes = (target.dataset.segments || target.dataset.segment || "").split(",").filter(Boolean);
    highlight(indexes);
    until = parseFloat(target.dataset.until);
    audio.currentTime = parseFloat(target.dataset.play);
    audio.play();
  });

  audio.addEventListener("timeupdate", function () {
    if (until !== null && audio.currentTime >= until) { audio.pause(); until = null; }
  });
})();
