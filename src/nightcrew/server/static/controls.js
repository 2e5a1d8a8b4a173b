// nightcrew dashboard: what every control shares. A control's answer is one
// line swapped into a `.said-line`; a refusal (4xx) is one line too, which
// htmx would otherwise not swap.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    var target = e.detail.target;
    if (target && target.classList.contains("said-line") && status >= 400 && status < 500) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();
