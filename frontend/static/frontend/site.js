// Upload with a progress bar. The form still works without JavaScript (plain POST).
(function () {
  "use strict";
  function initUpload(form) {
    var bar = form.querySelector("progress");
    var status = form.querySelector("[data-upload-status]");
    form.addEventListener("submit", function (event) {
      if (!window.XMLHttpRequest || !window.FormData) { return; }
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.hidden = false;
          bar.max = e.total; bar.value = e.loaded;
          status.textContent = form.dataset.sending.replace("%s", Math.round(100 * e.loaded / e.total));
        }
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
        if (xhr.status >= 200 && xhr.status < 300 && body.url) {
          status.textContent = form.dataset.done;
          window.location.assign(body.url);
        } else {
          bar.hidden = true;
          status.textContent = (body.error && body.error.message) || form.dataset.failed;
          status.classList.add("error-box");
        }
      });
      xhr.addEventListener("error", function () {
        bar.hidden = true;
        status.textContent = form.dataset.failed;
        status.classList.add("error-box");
      });
      status.classList.remove("error-box");
      xhr.send(new FormData(form));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload]").forEach(initUpload);
  });
})();
