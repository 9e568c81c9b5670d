/* Tollgate's small progressive enhancements. Every page works without this file.
 *
 * - Bulk approval: the total of the selected requests, per currency, as they are ticked.
 * - After htmx swaps: focus moves to the outcome of a decision; refreshed lists announce counts.
 * Loaded with `defer` from the same origin, so a strict `script-src 'self'` policy allows it.
 */
(function () {
  "use strict";

  function updateBulkTotal(form) {
    var output = form.querySelector("[data-bulk-selected]");
    if (!output) return;
    var totals = {};
    var count = 0;
    form.querySelectorAll("input[name=requests]:checked").forEach(function (box) {
      var currency = box.getAttribute("data-currency");
      var cents = Math.round(parseFloat(box.getAttribute("data-amount")) * 100);
      totals[currency] = (totals[currency] || 0) + cents;
      count += 1;
    });
    var parts = Object.keys(totals).sort().map(function (currency) {
      // As the page's own totals read: the browser's language (which Tollgate formats by too)
      // and the currency's own minor units.
      return new Intl.NumberFormat(navigator.language || undefined, {
        style: "currency", currency: currency
      }).format(totals[currency] / 100);
    });
    output.textContent = count
      ? "Selected: " + count + " request" + (count === 1 ? "" : "s") + ", " + parts.join(" + ") + "."
      : "Nothing selected yet.";
  }

  function initBulk(root) {
    (root || document).querySelectorAll("form[data-bulk]").forEach(function (form) {
      updateBulkTotal(form);
      form.addEventListener("change", function () { updateBulkTotal(form); });
    });
  }

  // After a decision swaps the page's content in place, move focus to what changed (the
  // message, or the page heading) so that keyboard and screen-reader users land on it.
  function focusAfterSwap(target) {
    var content = document.getElementById("content");
    // An outerHTML swap of #content leaves the event's target detached from the page.
    if (!content || (target !== content && document.body.contains(target))) return;
    target = content;
    var landing = target.querySelector(".messages li, .error[role=alert], h1");
    if (!landing) return;
    if (!landing.hasAttribute("tabindex")) landing.setAttribute("tabindex", "-1");
    landing.focus();
  }

  // A list refreshed by its filters tells screen readers what it now holds (its counts), through
  // the page's one polite live region, which stays in place while the list is swapped.
  function announce(target) {
    var announcer = document.getElementById("announce");
    // An outerHTML swap leaves `target` detached: read the element now in the page.
    var list = (target.id && document.getElementById(target.id)) || target;
    if (!announcer || !list) return;
    var summary = list.querySelector(list.getAttribute("data-announce"));
    if (summary) announcer.textContent = summary.textContent.replace(/\s+/g, " ").trim();
  }

  document.addEventListener("DOMContentLoaded", function () { initBulk(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.hasAttribute && target.hasAttribute("data-announce")) announce(target);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    initBulk(event.target);
    focusAfterSwap(event.target);
  });
})();
