// The imaging result viewer: the heatmap opacity slider (0-100 %, arrow keys too). Delegated from the
// document, so it works in the result HTMX swaps in when the analysis ends (rendered at 50 %, in step with
// the overlay). No inline scripts (CSP).
(function () {
  "use strict";

  function apply(slider) {
    var root = slider.closest("[data-testid=analysis]") || document;
    var heatmap = root.querySelector(".imaging-heatmap");
    var output = root.querySelector("[data-opacity-value]");
    var value = Number(slider.value);
    if (heatmap) { heatmap.style.opacity = String(value / 100); }
    if (output) { output.textContent = value + " %"; }
    slider.setAttribute("aria-valuetext", value + " %");
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("[data-heatmap-opacity]")) { apply(event.target); }
  });
})();
