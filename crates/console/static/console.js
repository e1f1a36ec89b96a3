// The console's shared script: small helpers any page may use (no framework, no build).
// Served as /static/console.<hash>.js with a year of cache; pages have no inline script.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  window.hotline = {
    csrf: csrf,
    // fetch() on this site with the session's CSRF token (needed by POST, PUT, PATCH, DELETE).
    fetch: function (url, opts) {
      opts = opts || {};
      var headers = new Headers(opts.headers || {});
      headers.set("X-CSRF-Token", csrf);
      opts.headers = headers;
      opts.credentials = "same-origin";
      return fetch(url, opts);
    }
  };
  // <form data-confirm="Question?">: asks before submitting.
  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  });
  // <time datetime="2026-11-01T12:34:56Z" data-local>: shown in the browser's time zone.
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = d.toLocaleString(document.documentElement.lang);
    });
  }
  window.hotline.localTimes = localTimes;
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
})();
