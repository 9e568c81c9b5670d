/* One keyboard scheme for every list and page, driven by data attributes (GitHub and Linear
 * are the model). Every page works without it.
 *
 *   [data-keys-list] ... [data-keys-row]   j / k move a visible focus between rows, Enter opens
 *                                          the row's link (lists marked [data-keynav] with
 *                                          .item rows are read the same way).
 *   [data-key="a"]                         the key focuses the element (or the element named by
 *                                          data-key-focus), opening a <details> around it;
 *                                          data-key-action="follow" follows a link instead.
 *   ?                                      shows the keys of this page (data-key-label names
 *                                          them).
 * No key fires while a text field, select or editable element has the focus, nor with a
 * modifier held.
 */
(function () {
  "use strict";

  var LIST = "[data-keys-list], [data-keynav]";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function rows() {
    var found = [];
    document.querySelectorAll(LIST).forEach(function (list) {
      var marked = list.querySelectorAll("[data-keys-row]");
      (marked.length ? marked : list.querySelectorAll(".item")).forEach(function (row) {
        found.push(row);
      });
    });
    return found;
  }

  function linkOf(row) {
    return row.matches("a[href]") ? row : row.querySelector("a[href]");
  }

  function move(step) {
    var all = rows();
    if (!all.length) return false;
    var current = all.findIndex(function (row) { return row.contains(document.activeElement); });
    var next = current === -1 ? (step > 0 ? 0 : all.length - 1)
      : Math.max(0, Math.min(all.length - 1, current + step));
    all.forEach(function (row) { row.classList.remove("is-current"); });
    var row = all[next];
    row.classList.add("is-current");
    var link = linkOf(row);
    (link || row).focus();
    if (row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
    return true;
  }

  function reveal(element) {
    for (var node = element.parentElement; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
  }

  function trigger(element) {
    if (element.getAttribute("data-key-action") === "follow" && element.href) {
      window.location.assign(element.href);
      return;
    }
    var named = element.getAttribute("data-key-focus");
    var target = (named && document.querySelector(named)) || element;
    reveal(target);
    target.focus();
    if (target.scrollIntoView) target.scrollIntoView({ block: "center" });
  }

  function help() {
    var dialog = document.getElementById("keys-help");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "keys-help";
      dialog.setAttribute("aria-labelledby", "keys-help-title");
      var title = document.createElement("h2");
      title.id = "keys-help-title";
      title.textContent = "Keys on this page";
      var list = document.createElement("dl");
      var entries = [];
      if (rows().length) {
        entries.push(["j / k", "Move down / up the list"], ["Enter", "Open the selected item"]);
      }
      document.querySelectorAll("[data-key]").forEach(function (element) {
        entries.push([element.getAttribute("data-key"),
          element.getAttribute("data-key-label") || element.textContent.trim()]);
      });
      entries.push(["?", "Show or hide this list"]);
      entries.forEach(function (entry) {
        var key = document.createElement("dt");
        var kbd = document.createElement("kbd");
        kbd.textContent = entry[0];
        key.appendChild(kbd);
        var meaning = document.createElement("dd");
        meaning.textContent = entry[1];
        list.appendChild(key);
        list.appendChild(meaning);
      });
      var close = document.createElement("button");
      close.type = "button";
      close.className = "secondary";
      close.textContent = "Close";
      close.addEventListener("click", function () { dialog.close(); });
      dialog.appendChild(title);
      dialog.appendChild(list);
      dialog.appendChild(close);
      document.body.appendChild(dialog);
    }
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    var key = event.key;
    if (key === "j" || key === "k") {
      if (move(key === "j" ? 1 : -1)) event.preventDefault();
      return;
    }
    if (key === "?") {
      help();
      event.preventDefault();
      return;
    }
    if (key.length !== 1) return;
    var element = document.querySelector('[data-key="' + key.replace(/["\\]/g, "") + '"]');
    if (element) {
      trigger(element);
      event.preventDefault();
    }
  });
})();
