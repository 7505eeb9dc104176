// The driver page works without this file; with it, a report can carry the driver's location
// (only after they tick the box) and a drawn signature.
(function () {
  "use strict";
  var share = document.querySelector("[data-share-location]");
  var state = document.getElementById("location-state");
  var last = null;
  var watch = null;

  function say(text) { if (state) { state.textContent = text; } }

  function start() {
    if (!("geolocation" in navigator)) { say("This phone cannot share its location."); return; }
    say("Finding your location…");
    watch = navigator.geolocation.watchPosition(function (pos) {
      last = pos.coords;
      say("Your location is shared with each update.");
    }, function () {
      say("Location not available: updates are sent without it.");
    }, { enableHighAccuracy: true, maximumAge: 30000, timeout: 15000 });
  }

  function stop() {
    if (watch !== null) { navigator.geolocation.clearWatch(watch); watch = null; }
    last = null;
    say("Your location is not shared.");
  }

  if (share) {
    share.checked = window.localStorage.getItem("baton-share-location") === "yes";
    if (share.checked) { start(); }
    share.addEventListener("change", function () {
      window.localStorage.setItem("baton-share-location", share.checked ? "yes" : "no");
      if (share.checked) { start(); } else { stop(); }
    });
  }

  document.querySelectorAll("[data-driver-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent === "yes") { event.preventDefault(); return; } // a double tap sends once
      if (last && share && share.checked) {
        form.elements.latitude.value = last.latitude.toFixed(6);
        form.elements.longitude.value = last.longitude.toFixed(6);
      }
      form.dataset.sent = "yes";
    });
  });

  document.querySelectorAll("[data-signature]").forEach(function (box) {
    var canvas = box.querySelector("canvas");
    var input = box.querySelector("input[type=file]");
    var ctx = canvas.getContext("2d");
    var drawing = false;
    var drawn = false;
    ctx.lineWidth = 4; ctx.lineCap = "round"; ctx.strokeStyle = "#1d2430";

    function point(e) {
      var r = canvas.getBoundingClientRect();
      return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
    }
    function save() {
      canvas.toBlob(function (blob) {
        if (!blob || typeof DataTransfer === "undefined") { return; }
        var files = new DataTransfer();
        files.items.add(new File([blob], "signature.png", { type: "image/png" }));
        input.files = files.files;
      }, "image/png");
    }
    canvas.addEventListener("pointerdown", function (e) {
      drawing = true; var p = point(e); ctx.beginPath(); ctx.moveTo(p.x, p.y); canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!drawing) { return; } var p = point(e); ctx.lineTo(p.x, p.y); ctx.stroke(); drawn = true;
    });
    canvas.addEventListener("pointerup", function () { drawing = false; if (drawn) { save(); } });
    box.querySelector("[data-clear-signature]").addEventListener("click", function () {
      ctx.clearRect(0, 0, canvas.width, canvas.height); drawn = false; input.value = "";
    });
  });
})();
