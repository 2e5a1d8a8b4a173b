// nightcrew dashboard, the timeline: when the SSE extension gives up on a
// stream and opens a new one, the URL carries the last entry this page got
// (after=), so a timeline that lost its server misses nothing and shows
// nothing twice. (The browser's own reconnects send Last-Event-ID.)
(function () {
  "use strict";
  var lastId = null;
  var open = htmx.createEventSource;
  htmx.createEventSource = function (url) {
    var u = new URL(url, window.location.href);
    if (lastId && u.pathname.endsWith("/timeline/events")) {
      u.searchParams.set("after", lastId);
      url = u.pathname + u.search;
    }
    var source = open(url);
    ["tl", "thinking"].forEach(function (name) {
      source.addEventListener(name, function (e) {
        if (e.lastEventId) { lastId = e.lastEventId; }
      });
    });
    return source;
  };
  // a new filtered view starts from its own page's cursor
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "timeline") { lastId = null; }
  });
})();
