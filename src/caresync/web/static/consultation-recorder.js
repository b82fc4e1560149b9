// The consultation recorder: MediaRecorder in the browser, then an upload of the recording to the page's
// form endpoint, following its redirect to the consultation. No inline scripts (CSP).
(function () {
  "use strict";
  var card = document.getElementById("recorder");
  if (!card) { return; }
  var start = card.querySelector("[data-action=start]");
  var stop = card.querySelector("[data-action=stop]");
  var elapsed = card.querySelector("[data-elapsed]");
  var level = card.querySelector("[data-level]");
  var message = card.querySelector("[data-message]");
  var recorder = null, chunks = [], began = 0, timer = null, meter = null;

  function say(text) { message.textContent = text; }

  if (!navigator.mediaDevices || !window.MediaRecorder) {
    start.disabled = true;
    say("This browser cannot record here: upload a recording instead.");
    return;
  }

  function showLevel(stream) {
    var context = new (window.AudioContext || window.webkitAudioContext)();
    var analyser = context.createAnalyser();
    context.createMediaStreamSource(stream).connect(analyser);
    var data = new Uint8Array(analyser.fftSize);
    meter = function () {
      analyser.getByteTimeDomainData(data);
      var peak = 0;
      for (var i = 0; i < data.length; i++) { peak = Math.max(peak, Math.abs(data[i] - 128)); }
      level.style.width = Math.min(100, peak * 100 / 64) + "%";
      if (recorder && recorder.state === "recording") { window.requestAnimationFrame(meter); }
    };
    window.requestAnimationFrame(meter);
  }

  function tick() {
    var seconds = Math.floor((Date.now() - began) / 1000);
    elapsed.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  function upload(blob) {
    var form = new FormData();
    form.append("csrf_token", card.dataset.csrf);
    form.append("audio", blob, "consultation.webm");
    say("Uploading the recording…");
    fetch(card.dataset.upload, { method: "POST", body: form, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected) { window.location.assign(response.url); return; }
        say("The upload failed (" + response.status + "). Try again, or upload the file.");
        start.disabled = false;
      })
      .catch(function () { say("The upload failed: check the connection and try again."); start.disabled = false; });
  }

  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = function (event) { if (event.data.size) { chunks.push(event.data); } };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (track) { track.stop(); });
        window.clearInterval(timer);
        upload(new Blob(chunks, { type: recorder.mimeType || "audio/webm" }));
      };
      recorder.start(1000);
      began = Date.now();
      timer = window.setInterval(tick, 500);
      showLevel(stream);
      start.disabled = true;
      stop.disabled = false;
      say("Recording. Stop when the consultation ends.");
    }).catch(function () { say("The microphone is not available: allow it, or upload a recording."); });
  });

  stop.addEventListener("click", function () {
    stop.disabled = true;
    if (recorder && recorder.state === "recording") { recorder.stop(); }
  });
})();
