/* Polls a running estimate's status and reloads the page once it has ended
   (succeeded, failed or cancelled). */
(function () {
  "use strict";
  var box = document.querySelector("[data-run-progress]");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  var label = box.querySelector("[data-progress-label]");
  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        bar.value = data.progress;
        label.textContent = data.progress + "%";
        box.querySelector("[data-run-parts]").textContent = data.parts_label;
        document.querySelector("[data-run-status]").textContent = data.status_label;
        if (data.status !== "queued" && data.status !== "running") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
