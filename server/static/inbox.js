// The inbox's few behaviours HTMX does not cover: keep the chat scrolled to its latest
// message, put a picked canned response in the box, show the attached file's name, and record
// a voice note with the browser's microphone (sent as the message's file).
(function () {
  "use strict";

  function thread() { return document.getElementById("thread"); }

  function toBottom(force) {
    var t = thread();
    if (!t) return;
    var near = t.scrollHeight - t.scrollTop - t.clientHeight < 160;
    if (force || near || !t.dataset.seen) { t.scrollTop = t.scrollHeight; t.dataset.seen = "1"; }
    if (document.querySelector(".chat") && window.innerWidth <= 760 && (force || !t.dataset.page)) {
      window.scrollTo(0, document.body.scrollHeight); t.dataset.page = "1";
    }
  }

  document.addEventListener("DOMContentLoaded", function () { toBottom(true); wire(); });
  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.target.id === "thread") toBottom(false);
    if (e.target.id === "composer-wrap") { wire(); var box = document.getElementById("f-text"); if (box) box.focus(); }
  });
  document.body.addEventListener("thread-changed", function () {
    setTimeout(function () { toBottom(true); }, 300);
  });

  // A live update of the chat's header waits while its actions menu is open (redrawing it
  // would close the menu under the agent's finger), and comes when the menu closes.
  var headLate = false;
  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.elt.id === "chat-head" && document.querySelector(".chat-actions[open]")) {
      e.preventDefault(); headLate = true;
    }
  });
  // One already on its way when the menu opened keeps the menu open as it lands.
  var wasOpen = false;
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target.id === "chat-head") wasOpen = !!document.querySelector(".chat-actions[open]");
  });
  document.body.addEventListener("htmx:afterSwap", function (e) {
    var menu = document.querySelector(".chat-actions");
    if (e.detail.target.id === "chat-head" && wasOpen && menu) menu.open = true;
  });
  document.addEventListener("toggle", function (e) {
    var head = document.getElementById("chat-head");
    if (headLate && head && e.target.matches(".chat-actions") && !e.target.open) {
      headLate = false;
      htmx.ajax("GET", head.getAttribute("hx-get"), { target: "#chat-head", swap: "innerHTML" });
    }
  }, true);

  document.addEventListener("click", function (e) {
    var pick = e.target.closest(".suggestion");
    if (!pick) return;
    var box = document.getElementById("f-text");
    box.value = pick.dataset.text;
    document.getElementById("suggestions").innerHTML = "";
    box.focus();
  });

  function wire() {
    var form = document.getElementById("composer");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    var input = form.querySelector("input[type=file]");
    var shown = form.querySelector(".attached");
    input.addEventListener("change", function () {
      shown.textContent = input.files.length ? input.files[0].name : "";
    });
    var rec = form.querySelector(".record");
    if (!rec || !window.MediaRecorder || !navigator.mediaDevices) return;
    rec.hidden = false;
    var label = rec.querySelector("span");
    var recorder = null, chunks = [], started = 0;
    rec.addEventListener("click", function () {
      if (recorder) { recorder.stop(); return; }
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
        chunks = []; started = Date.now();
        var type = MediaRecorder.isTypeSupported("audio/ogg;codecs=opus") ? "audio/ogg" : "audio/webm";
        recorder = new MediaRecorder(stream, { mimeType: type });
        recorder.ondataavailable = function (ev) { chunks.push(ev.data); };
        recorder.onstop = function () {
          stream.getTracks().forEach(function (t) { t.stop(); });
          var ext = type === "audio/ogg" ? "ogg" : "webm";
          var file = new File(chunks, "audio." + ext, { type: type });
          var dt = new DataTransfer(); dt.items.add(file); input.files = dt.files;
          shown.textContent = file.name + " (" + Math.round((Date.now() - started) / 1000) + " s)";
          recorder = null; label.textContent = rec.dataset.start; rec.classList.remove("recording");
        };
        recorder.start(); label.textContent = rec.dataset.stop; rec.classList.add("recording");
      }).catch(function () { rec.hidden = true; });
    });
  }
})();
