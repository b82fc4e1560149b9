// Imaging upload: drop an image on the drop zone (or choose it), checked here for type and size before it
// is sent; the server checks again, and its message is what the page shows when it refuses the file.
// <form data-imaging-upload data-max-bytes="N"> holding [data-drop-zone], input[type=file],
// [data-file-name] and [data-file-error]. No inline scripts (CSP).
(function () {
  "use strict";
  var EXTENSIONS = /\.(dcm|dicom|dic|png|jpe?g)$/i;

  function kind(bytes) {
    if (bytes.length >= 132 && String.fromCharCode.apply(null, bytes.subarray(128, 132)) === "DICM") { return "DICOM"; }
    if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) { return "PNG"; }
    if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) { return "JPEG"; }
    return "";
  }

  function megabytes(size) { return (size / (1024 * 1024)).toFixed(1) + " MB"; }

  function start(form) {
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-drop-zone]");
    var shown = form.querySelector("[data-file-name]");
    var error = form.querySelector("[data-file-error]");
    var button = form.querySelector("button[type=submit]");
    var maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;

    function refuse(message) {
      input.setCustomValidity(message);
      error.textContent = message;
      zone.classList.toggle("is-invalid", Boolean(message));
      input.classList.toggle("is-invalid", Boolean(message));
      if (message) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    }

    function check() {
      var file = input.files && input.files[0];
      shown.textContent = "";
      refuse("");
      if (!file) { return; }
      if (maxBytes && file.size > maxBytes) {
        refuse("The file is " + megabytes(file.size) + "; images up to " + megabytes(maxBytes) + " are accepted.");
        return;
      }
      if (file.size === 0) { refuse("The file is empty."); return; }
      file.slice(0, 132).arrayBuffer().then(function (buffer) {
        var found = kind(new Uint8Array(buffer));
        var named = EXTENSIONS.test(file.name) || file.name.indexOf(".") < 0;  // DICOM files often have no extension
        if (!found && !named) {
          refuse(file.name + " is not a DICOM, PNG or JPEG image.");
          return;
        }
        shown.textContent = file.name + " · " + (found || "DICOM?") + " · " + megabytes(file.size);
      });
    }

    input.addEventListener("change", check);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("is-dragover"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("is-dragover"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length) { return; }
      input.files = event.dataTransfer.files;
      check();
    });
    form.addEventListener("submit", function () {
      button.disabled = true;
      button.textContent = "Uploading…";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-imaging-upload]").forEach(start);
  });
})();
