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
  // the one before it when it is last in the column. Requests go one after
  // another, in the order the moves were made; while any is on its way the
  // board keeps the moves as shown (a board the stream sends meanwhile may
  // predate them), and once all are answered it is fetched as the store has it.
  var moving = 0;
  var queue = Promise.resolve();
  function reorder(item, next) {
    var prev = item.previousElementSibling;
    var values = next ? { id: item.dataset.id, before: next.dataset.id }
                      : { id: item.dataset.id, after: prev.dataset.id };
    var source = item.closest(".cards");
    moving += 1;
    queue = queue.then(function () {
      return htmx.ajax("POST", "/p/" + key() + "/backlog/reorder", {
        source: source, target: "#said", swap: "innerHTML", values: values
      });
    }).catch(function () {}).then(function () {
      moving -= 1;
      if (moving === 0) { missed = false; refreshBoard(); }
    });
  }

  // The keyboard's way (and a tap's): a pending card's ▲ ▼ buttons move it
  // one place with the same request, shown at once.
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("#board .mv");
    if (!button || button.disabled) { return; }
    var item = button.closest(".card");
    var up = button.dataset.dir === "up";
    var other = up ? item.previousElementSibling : item.nextElementSibling;
    if (!other) { return; }
    if (up) { other.before(item); } else { other.after(item); }
    button.focus();
    reorder(item, item.nextElementSibling);
  });

  // Whatever had the focus on the board (a card's ▲ ▼ or its box) has it again
  // on the board sent in its place, so a keyboard can go on.
  var focused = null;
  function rememberFocus() {
    var active = document.activeElement;
    var card = active && active.closest ? active.closest("#board .card") : null;
    focused = card ? { id: card.dataset.id, dir: active.dataset.dir || null } : null;
  }
  function restoreFocus() {
    if (!focused) { return; }
    var card = document.querySelector('#board .card[data-id="' + focused.id + '"]');
    var target = null;
    if (card && focused.dir) {
      target = card.querySelector('.mv[data-dir="' + focused.dir + '"]');
      if (target && target.disabled) { target = card.querySelector(".mv:not([disabled])"); }
    } else if (card) {
      target = card.querySelector("input[name=ids]");
    }
    focused = null;
    if (target) { target.focus(); }
  }
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (!e.detail.target || e.detail.target.id !== "board") { return; }
    if (moving) { e.detail.shouldSwap = false; return; } // a later move is on its way
    rememberFocus();
  });

  document.addEventListener("change", function (e) {
    var box = e.target;
    if (box.name !== "ids" || !box.closest("#board")) { return; }
    if (box.checked) { chosen.add(box.value); } else { chosen.delete(box.value); }
    showChosen();
  });

  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    if (e.target.id !== "board") { return; }
    if (dragging || moving) { missed = true; e.preventDefault(); return; }
    rememberFocus();
  });

  // (in the task that swapped the board in: no key press can fall in between)
  document.addEventListener("htmx:afterSwap", function (e) {
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
