// The results page's sky plot: steps from the whole sky to the field's own
// outline with the + and - buttons (or a pinch / Ctrl + wheel over the plot).  Without
// this script every view is shown, one under the other.
(function () {
  "use strict";
  document.querySelectorAll(".skyplot").forEach(function (plot) {
    var levels = plot.querySelectorAll(".level");
    var label = plot.querySelector(".zoom-label");
    var zoomIn = plot.querySelector(".zoom-in");
    var zoomOut = plot.querySelector(".zoom-out");
    if (!levels.length || !zoomIn || !zoomOut) return;
    plot.classList.add("scripted");
    var current = 0;
    function show(index) {
      current = Math.max(0, Math.min(levels.length - 1, index));
      levels.forEach(function (level, i) { level.hidden = i !== current; });
      label.textContent = levels[current].getAttribute("data-label");
      plot.setAttribute("data-current", String(current));
      zoomOut.disabled = current === 0;
      zoomIn.disabled = current === levels.length - 1;
    }
    zoomIn.addEventListener("click", function () { show(current + 1); });
    zoomOut.addEventListener("click", function () { show(current - 1); });
    var last = 0;
    plot.addEventListener("wheel", function (event) {
      // Only a pinch (or Ctrl + wheel) zooms: a plain wheel keeps scrolling the page.
      if (!event.ctrlKey && !event.metaKey) return;
      // One step per gesture, not one per wheel event of a trackpad's burst.
      if (event.timeStamp - last < 250) { event.preventDefault(); return; }
      var next = current + (event.deltaY < 0 ? 1 : -1);
      if (next < 0 || next >= levels.length) return;
      event.preventDefault();
      last = event.timeStamp;
      show(next);
    }, { passive: false });
    show(0);
  });
})();
