// Drag and drop onto the upload form, and showing only the scale fields
// that apply; the form works without this script.
(function () {
  "use strict";
  var zone = document.getElementById("dropzone");
  var input = document.querySelector('#upload-form input[type="file"]');
  var chosen = document.getElementById("chosen");
  if (zone && input) {
    var show = function () {
      var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
      chosen.textContent = names.length ? "Chosen: " + names.join(", ") : "";
    };
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        show();
      }
    });
    input.addEventListener("change", show);
  }

  var preset = document.getElementById("id_scale_preset");
  var custom = document.getElementById("custom-scale");
  var type = document.getElementById("id_scale_type");
  function update() {
    if (preset && custom) custom.hidden = preset.value !== "custom";
    if (type) {
      document.querySelectorAll(".scale-ul").forEach(function (el) { el.hidden = type.value !== "ul"; });
      document.querySelectorAll(".scale-ev").forEach(function (el) { el.hidden = type.value !== "ev"; });
    }
  }
  if (preset) preset.addEventListener("change", update);
  if (type) type.addEventListener("change", update);
  update();
})();
