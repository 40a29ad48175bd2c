// Polls the submission's JSON status every second and updates the page in
// place, so people watch queued -> extracting -> solving -> done without reloading.
(function () {
  "use strict";
  var root = document.getElementById("status");
  if (!root) return;
  var url = root.getAttribute("data-url");
  var ORDER = ["queued", "extracting", "solving", "done"];

  function stepOf(job) {
    if (job.status === "queued") return "queued";
    if (job.status === "running") {
      if (job.stage === "solving" || job.stage === "annotating" || job.stage === "finished") return "solving";
      return "extracting";
    }
    return "done";
  }

  function render(data) {
    data.jobs.forEach(function (job) {
      var section = root.querySelector('[data-job="' + job.id + '"]');
      if (!section) {
        // A job appeared after the page was drawn (e.g. a URL fetched): reload once.
        window.location.reload();
        return;
      }
      var label = section.querySelector(".label");
      label.textContent = job.label;
      label.className = "label status-" + job.status;
      var current = ORDER.indexOf(stepOf(job));
      section.querySelectorAll(".stages li").forEach(function (li) {
        var index = ORDER.indexOf(li.getAttribute("data-stage"));
        li.className = index < current ? "past" : index === current ? "current" : "";
      });
      section.querySelector(".log").textContent = job.log;
      var stars = section.querySelector(".stars");
      if (job.stars !== null && job.stars !== undefined) {
        stars.querySelector(".n-stars").textContent = job.stars_text;
        stars.hidden = false;
      }
      var link = section.querySelector(".results-link");
      if (job.status === "success" || job.status === "failure") link.hidden = false;
    });
    root.setAttribute("data-finished", data.finished ? "1" : "0");
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) render(data);
        if (!data || !data.finished) window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  poll();
})();
