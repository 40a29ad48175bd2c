// Switches the results picture between the overlays (objects, sources,
// catalogue stars, grid) without reloading the page.
(function () {
  "use strict";
  var image = document.getElementById("result-image");
  if (!image) return;
  document.querySelectorAll(".overlay-toggles button").forEach(function (button) {
    button.addEventListener("click", function () {
      image.src = button.getAttribute("data-src");
      image.alt = "the image with " + button.textContent + " marked";
      document.querySelectorAll(".overlay-toggles button").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
    });
  });
})();
