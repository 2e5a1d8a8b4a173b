// nightcrew dashboard, the feature page: a click on a line of a reviewable
// diff opens a comment box under it (a copy of the page's <template>, posted
// by htmx with the page's CSRF header); a refused request shows its one line;
// a live refresh of the attempts waits while a comment box is open.
(function () {
  "use strict";

  function openBox(row) {
    var next = row.nextElementSibling;
    if (next && next.classList.contains("cform")) {
      next.querySelector("textarea").focus();
      return;
    }
    var table = row.closest("table.diff");
    var template = document.getElementById("comment-form");
    var box = template.content.firstElementChild.cloneNode(true);
    var form = box.querySelector("form");
    form.elements.attempt.value = table.dataset.attempt;
    form.elements.file.value = table.dataset.file;
    form.elements.line.value = row.dataset.line;
    box.querySelector(".where").textContent =
      "attempt " + table.dataset.attempt + " · " + table.dataset.file + ":" + row.dataset.line;
    row.after(box);
    htmx.process(box);
    box.querySelector("textarea").focus();
  }

  // The page is live: its stream asks for the attempts again when they move
  // (#work-live). That refresh waits while a comment box is open, so nobody's
  // typing is lost, and goes ahead once the box is closed or its comment added.
  // A refresh already on its way when a box opens is not swapped in either.
  var due = false;
  function boxOpen() { return document.querySelector("tr.cform") !== null; }
  document.addEventListener("htmx:confirm", function (e) {
    if (e.detail.elt.id === "work-live" && boxOpen()) {
      e.preventDefault();
      due = true;
    }
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "work-live" && boxOpen()) {
      e.detail.shouldSwap = false;
      due = true;
    }
  });
  function releaseHeld() {
    var live = document.getElementById("work-live");
    if (due && live && !boxOpen()) {
      due = false;
      htmx.ajax("GET", live.getAttribute("hx-get"), { target: live, swap: "innerHTML" });
    }
  }
  document.addEventListener("htmx:afterSwap", releaseHeld);

  document.addEventListener("click", function (e) {
    var cancel = e.target.closest(".cform .cancel");
    if (cancel) {
      cancel.closest("tr.cform").remove();
      releaseHeld();
      return;
    }
    var row = e.target.closest("table.diff.reviewable tr.dl[data-line]");
    if (row) { openBox(row); }
  });

  document.addEventListener("htmx:responseError", function (e) {
    var where = document.getElementById("review-error");
    if (where) { where.textContent = e.detail.xhr.responseText.trim(); }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var where = document.getElementById("review-error");
    if (where && e.detail.successful) { where.textContent = ""; }
  });
})();
