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
  // <time datetime="2026-11-01T12:34:56Z" data-local>: shown in the hotline's time zone
  // (<html data-zone="America/Lima">), whatever the browser's; the server wrote the same time
  // in that zone for a page read without the script.
  function localTimes(root) {
    var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
    var zone = document.documentElement.getAttribute("data-zone");
    if (zone) opts.timeZone = zone;
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(document.documentElement.lang, opts);
    } catch (e) {
      delete opts.timeZone;
      fmt = new Intl.DateTimeFormat(document.documentElement.lang, opts);
    }
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = fmt.format(d);
    });
  }
  window.hotline.localTimes = localTimes;
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
})();

// Live pages (/operator, /board): an element with data-live-src="/…/events" names the page's
// event stream and shows its state (its data-on, data-lost, data-ended texts); the stream's
// `update` events carry {"waiting": n, "parts": {"<name>": "<html>"}} and each part replaces
// the content of the element with data-live="<name>". A note being typed survives the swap
// when the call is the same. An `end` event (the session ended) closes the stream.
(function () {
  function start() {
    var badge = document.querySelector("[data-live-src]");
    if (!badge || !window.EventSource) return;
    var es = new EventSource(badge.getAttribute("data-live-src"));
    function show(state) {
      badge.setAttribute("data-live-now", state);
      badge.textContent = badge.getAttribute("data-" + state) || state;
    }
    function swap(el, html) {
      var old = el.querySelector("[data-call]");
      var draft = el.querySelector("textarea");
      var keep = draft && draft.value ? { call: old && old.getAttribute("data-call"), value: draft.value,
        focused: document.activeElement === draft } : null;
      el.innerHTML = html;
      if (keep) {
        var now = el.querySelector("[data-call]");
        var area = el.querySelector("textarea");
        if (area && now && now.getAttribute("data-call") === keep.call) {
          area.value = keep.value;
          if (keep.focused) area.focus();
        }
      }
      window.hotline.localTimes(el);
    }
    es.addEventListener("update", function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (x) { return; }
      show("on");
      document.body.setAttribute("data-waiting", String(msg.waiting));
      var parts = msg.parts || {};
      Object.keys(parts).forEach(function (name) {
        var el = document.querySelector('[data-live="' + name + '"]');
        if (el) swap(el, parts[name]);
      });
    });
    es.addEventListener("end", function () {
      es.close();
      show("ended");
    });
    es.addEventListener("error", function () {
      show(es.readyState === EventSource.CLOSED ? "ended" : "lost");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
