// The results page: switching the picture between the overlays (objects,
// sources, catalogue stars, grid) without reloading, and filling in the
// pictures and files of a job solved a moment ago as soon as they are drawn
// (a solution is recorded first, its pictures follow).
(function () {
  "use strict";

  function bindOverlays() {
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
  }

  // Swaps every [data-live] part of the page for the same part of a fresh copy.
  function fillIn() {
    return fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return false;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var live = fresh.getElementById("results-live");
        if (live && live.getAttribute("data-pending") === "1") return false;
        document.querySelectorAll("[data-live]").forEach(function (part) {
          var replacement = fresh.getElementById(part.id);
          if (replacement) part.replaceWith(document.importNode(replacement, true));
        });
        bindOverlays();
        var notice = document.getElementById("pictures-pending");
        if (notice) {
          notice.textContent = "The pictures and files are here.";
          window.setTimeout(function () { notice.hidden = true; }, 4000);
        }
        if (live) document.getElementById("results-live").setAttribute("data-pending", "0");
        return true;
      });
  }

  function watch(root) {
    var url = root.getAttribute("data-status-url");
    var jobId = Number(root.getAttribute("data-job"));
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          var job = data && data.jobs.filter(function (j) { return j.id === jobId; })[0];
          if (job && !job.pictures_pending) {
            return fillIn().then(function (done) { if (!done) window.setTimeout(poll, 1000); });
          }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }

  bindOverlays();
  var root = document.getElementById("results-live");
  if (root && root.getAttribute("data-pending") === "1") watch(root);
})();
