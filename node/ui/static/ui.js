/* OpenSeats: progressive enhancement only; every page works without it.
   - moves keyboard focus to a form's error summary after a failed submit;
   - OpenSeats.csrfHeaders() gives fetch() calls the admin's CSRF header. */
(function () {
  "use strict";

  function csrfHeaders() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? { "X-CSRF-Token": meta.getAttribute("content") } : {};
  }

  window.OpenSeats = { csrfHeaders: csrfHeaders };

  document.addEventListener("DOMContentLoaded", function () {
    var target = document.querySelector("[data-autofocus]");
    if (target) {
      target.focus();
    }
  });
})();
