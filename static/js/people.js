/* Choosing a person from a list: type part of a name and the list narrows as you type.
 *
 * Works on <select data-people>, whose options carry data-regions (the regions where the person
 * holds a role). When the form has a <select data-people-site>, only people holding a role in
 * the region of the chosen site (or, for every site, in every region offered) stay listed.
 * The server offers only people the rule allows and checks the choice again; without this file
 * the list is a plain drop-down. Loaded with `defer` from the same origin (strict CSP).
 */
(function () {
  "use strict";

  function plain(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function neededRegions(siteSelect) {
    if (!siteSelect) return [];
    var chosen = siteSelect.options[siteSelect.selectedIndex];
    if (chosen && chosen.value) return [chosen.dataset.region];
    var all = {};
    Array.prototype.forEach.call(siteSelect.options, function (option) {
      if (option.value && option.dataset.region) all[option.dataset.region] = true;
    });
    return Object.keys(all);
  }

  function setup(select) {
    var siteSelect = select.form && select.form.querySelector("select[data-people-site]");
    // A list to pick from on a wide screen; a phone keeps its own picker, which lists only the
    // options left after typing.
    var listbox = window.matchMedia("(min-width: 700px)").matches;
    var search = document.createElement("input");
    search.type = "search";
    search.className = listbox ? "people-search joined" : "people-search";
    search.id = select.id + "-search";
    search.placeholder = "Type a name";
    search.autocomplete = "off";
    search.setAttribute("aria-label", "Find a person");
    search.setAttribute("aria-controls", select.id);
    var status = document.createElement("p");
    status.className = "muted people-count";
    status.setAttribute("aria-live", "polite");
    select.parentNode.insertBefore(search, select);
    select.parentNode.insertBefore(status, select.nextSibling);
    if (listbox) select.size = 6;

    function visible() {
      return Array.prototype.filter.call(select.options, function (option) {
        return option.value && !option.hidden;
      });
    }

    function apply() {
      var words = plain(search.value).split(/\s+/).filter(Boolean);
      var needed = neededRegions(siteSelect);
      Array.prototype.forEach.call(select.options, function (option) {
        var regions = (option.dataset.regions || "").split(" ");
        var name = plain(option.text);
        if (!option.value) {
          option.hidden = listbox;
          return;
        }
        var shown =
          needed.every(function (region) { return regions.indexOf(region) !== -1; }) &&
          words.every(function (word) { return name.indexOf(word) !== -1; });
        option.hidden = !shown;
        option.disabled = !shown;
      });
      var chosen = select.options[select.selectedIndex];
      if (chosen && chosen.hidden) select.selectedIndex = listbox ? -1 : 0;
      var count = visible().length;
      status.textContent = count === 0 ? "Nobody here matches." :
        count === 1 ? "1 person" : count + " people";
    }

    search.addEventListener("input", apply);
    if (siteSelect) siteSelect.addEventListener("change", apply);
    search.addEventListener("keydown", function (event) {
      var shown = visible();
      if (event.key === "ArrowDown" && shown.length) {
        if (select.selectedIndex === -1 || select.options[select.selectedIndex].hidden) {
          shown[0].selected = true;
        }
        select.focus();
        event.preventDefault();
      } else if (event.key === "Enter") {
        // Enter picks the only match instead of sending the form half filled in.
        if (shown.length === 1) shown[0].selected = true;
        event.preventDefault();
      }
    });
    apply();
  }

  Array.prototype.forEach.call(document.querySelectorAll("select[data-people]"), setup);
})();
