// nightcrew dashboard: the Kanban page's board. Cards are chosen with their
// checkboxes (the choice survives the board being sent again when a card
// moves), pending cards are reordered by dragging (SortableJS; last place
// too) or with their ▲ ▼ buttons from the keyboard, and every
// change is a POST the server answers in one line, shown in #said (a
// refusal too: see controls.js).
(function () {
  "use strict";

  var chosen = new Set();
  var dragging = false;
  var missed = false; // a board sent while a card was being dragged

  function kanban() { return document.querySelector(".kanban"); }
  function key() { return kanban().dataset.key; }

  function showChosen() {
    document.querySelectorAll("#board input[name=ids]").forEach(function (box) {
      box.checked = chosen.has(box.value);
      box.closest(".card").classList.toggle("chosen", box.checked);
    });
    var count = document.getElementById("chosen-count");
    if (count) { count.textContent = String(chosen.size); }
    document.querySelectorAll(".selection .act").forEach(function (b) { b.disabled = chosen.size === 0; });
  }

  function say(text, ok) {
    var said = document.getElementById("said");
    said.innerHTML = "";
    var span = document.createElement("span");
    span.className = "said " + (ok ? "ok" : "bad");
    span.textContent = text;
    said.appendChild(span);
  }

  function refreshBoard() {
    htmx.ajax("GET", "/p/" + key() + "/backlog/board", { target: "#board", swap: "innerHTML" });
  }

  function makeSortable() {
    var list = document.querySelector("#board .cards.sortable");
    if (!list || list.dataset.sortable) { return; }
    list.dataset.sortable = "1";
    Sortable.create(list, {
      animation: 120,
      forceFallback: true, // mouse and touch events, the same on every browser and phone
      filter: "input, textarea, button, label",
      preventOnFilter: false,
      onStart: function () { dragging = true; },
      onEnd: function (e) {
        dragging = false;
        var item = e.item, next = item.nextElementSibling;
        if (e.oldIndex === e.newIndex) {
          if (missed) { missed = false; refreshBoard(); }
          return;
        }
        missed = false;
        reorder(item, next);
      }
    });
  }

  // The one reorder request: before the card that follows it now, or after
  // the one before it when it is last in the column.
  function reorder(item, next) {
    var prev = item.previousElementSibling;
    var values = next ? { id: item.dataset.id, before: next.dataset.id }
                      : { id: item.dataset.id, after: prev.dataset.id };
    htmx.ajax("POST", "/p/" + key() + "/backlog/reorder", {
      source: item.closest(".cards"), target: "#said", swap: "innerHTML", values: values
    });
  }

  // The keyboard's way (and a tap's): a pending card's ▲ ▼ buttons move it
  // one place with the same request; the button keeps the focus when the
  // board is sent again, so ▼ can be pressed again and again.
  var refocus = null;
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("#board .mv");
    if (!button || button.disabled) { return; }
    var item = button.closest(".card");
    var up = button.dataset.dir === "up";
    var other = up ? item.previousElementSibling : item.nextElementSibling;
    if (!other) { return; }
    if (up) { other.before(item); } else { other.after(item); } // shown at once
    refocus = { id: item.dataset.id, dir: button.dataset.dir };
    button.focus();
    reorder(item, item.nextElementSibling);
  });
  function restoreFocus() {
    if (!refocus) { return; }
    var card = document.querySelector('#board .card[data-id="' + refocus.id + '"]');
    var button = card && card.querySelector('.mv[data-dir="' + refocus.dir + '"]');
    if (button && !button.disabled) { button.focus(); }
    else if (card) { var other = card.querySelector(".mv:not([disabled])"); if (other) { other.focus(); } }
  }

  document.addEventListener("change", function (e) {
    var box = e.target;
    if (box.name !== "ids" || !box.closest("#board")) { return; }
    if (box.checked) { chosen.add(box.value); } else { chosen.delete(box.value); }
    showChosen();
  });

  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    if (dragging && e.target.id === "board") { missed = true; e.preventDefault(); }
  });

  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target.id === "board") { showChosen(); makeSortable(); restoreFocus(); }
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    if (e.target.id === "board") { showChosen(); makeSortable(); restoreFocus(); }
  });

  // Done with the chosen cards: choose again for the next change; an answer
  // sent leaves its box empty.
  document.addEventListener("htmx:afterRequest", function (e) {
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if (status === 0) { say("the dashboard did not answer", false); }
    if (status < 200 || status >= 300) { return; }
    var elt = e.detail.elt;
    if (elt.closest && elt.closest(".selection")) { chosen.clear(); showChosen(); }
    if (elt.matches && elt.matches("form.answer")) {
      var box = elt.querySelector("textarea");
      if (box) { box.value = ""; }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!kanban()) { return; }
    showChosen();
    makeSortable();
  });
})();
