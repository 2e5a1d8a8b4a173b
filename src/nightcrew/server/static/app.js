// nightcrew dashboard: the little the pages need beyond htmx and its SSE
// extension. Loaded after both (defer keeps the order), before htmx reads
// the page.
(function () {
  "use strict";

  // The id of the last store event this page has seen. The browser sends it
  // back itself (Last-Event-ID) when it reconnects; when the SSE extension
  // gives up on a stream and opens a new one, the URL carries it instead.
  var lastId = null;
  var NAMES = ["activity", "cost", "run", "lanes", "queue", "budgets", "projects", "seen"];

  function withAfter(url, id) {
    var u = new URL(url, window.location.href);
    u.searchParams.set("after", id);
    return u.pathname + u.search;
  }

  htmx.createEventSource = function (url) {
    var source = new EventSource(lastId ? withAfter(url, lastId) : url);
    NAMES.forEach(function (name) {
      source.addEventListener(name, function (e) {
        if (e.lastEventId) { lastId = e.lastEventId; }
      });
    });
    return source;
  };

  function setConn(state, title) {
    var dot = document.getElementById("conn");
    if (!dot) { return; }
    dot.className = "conn " + state;
    dot.title = title;
  }
  document.addEventListener("htmx:sseOpen", function () { setConn("live", "live updates: connected"); });
  document.addEventListener("htmx:sseError", function () { setConn("down", "live updates: reconnecting"); });

  // The feed keeps its newest lines; the placeholder goes once there is one.
  var FEED_LINES = 200;
  document.addEventListener("htmx:sseMessage", function (e) {
    if (e.target && e.target.id === "feed") {
      var feed = e.target;
      while (feed.children.length > FEED_LINES) { feed.removeChild(feed.lastElementChild); }
      var empty = document.querySelector(".feed-empty");
      if (empty) { empty.remove(); }
    }
  });

  // Elapsed times of running attempts go on between updates.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function duration(s) {
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    return h ? h + ":" + pad(m) + ":" + pad(sec) : m + ":" + pad(sec);
  }
  setInterval(function () {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed]").forEach(function (el) {
      if (!el.dataset.t0) { el.dataset.t0 = String(now); }
      var s = parseFloat(el.dataset.elapsed) + (now - parseInt(el.dataset.t0, 10)) / 1000;
      el.textContent = duration(s);
    });
  }, 1000);
})();
