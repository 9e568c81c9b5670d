/* The raise form: line rows (add, remove, subtotals, total) and Odoo search-as-you-type.
 *
 * Progressive enhancement: without this script the form still works with one line, typed
 * names and the "Show who would approve" button. With it, rows can be added and removed, the
 * amount follows the lines, and product, vendor and customer fields offer Odoo's records as
 * you type (a <datalist>); choosing one fills its hidden reference, and for a product its unit
 * price, unit and category when those are still empty.
 */
(function () {
  "use strict";

  var form = document.getElementById("raise-form");
  if (!form) return;

  var money = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });

  function number(input) {
    if (!input || input.value.trim() === "") return null;
    var value = parseFloat(input.value.replace(",", "."));
    return isFinite(value) ? value : null;
  }

  // --- line rows ----------------------------------------------------------------------------
  var rows = document.getElementById("line-rows");
  var template = document.getElementById("line-template");
  var total = document.getElementById("lines-total");
  var addButton = document.getElementById("add-line");
  var amount = form.querySelector("[name=amount]");
  var totalForms = form.querySelector("[name=lines-TOTAL_FORMS]");
  var amountHint = amount ? amount.closest(".field").querySelector(".hint") : null;

  function field(row, name) {
    return row.querySelector("[name$='-" + name + "']");
  }

  var lastSum = null;

  function recompute() {
    if (!rows) return;
    var sum = 0;
    var counted = 0;
    rows.querySelectorAll("[data-line]").forEach(function (row) {
      var qty = number(field(row, "quantity"));
      var price = number(field(row, "unit_price"));
      var out = row.querySelector("[data-subtotal]");
      if (qty !== null && price !== null) {
        var subtotal = Math.round(qty * price * 100) / 100;
        sum += subtotal;
        counted += 1;
        out.textContent = money.format(subtotal);
      } else {
        out.textContent = "—";
      }
    });
    total.textContent = counted ? money.format(sum) : "—";
    // The route depends on the amount: ask for it again once the sum has changed.
    var key = counted ? sum.toFixed(2) : "";
    if (lastSum !== null && key !== lastSum) document.body.dispatchEvent(new Event("lines-changed"));
    lastSum = key;
    if (amount) {
      if (counted) {
        amount.value = (Math.round(sum * 100) / 100).toFixed(2);
        amount.readOnly = true;
        if (amountHint) amountHint.textContent = "The sum of the lines' subtotals.";
      } else {
        amount.readOnly = false;
      }
    }
  }

  function renumber() {
    var all = rows.querySelectorAll("[data-line]");
    all.forEach(function (row, index) {
      row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
        ["name", "id", "for", "list"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/lines-(\d+|__prefix__)-/, "lines-" + index + "-"));
        });
      });
      row.querySelector("[data-line-number]").textContent = String(index + 1);
      row.querySelector("[data-remove-line]").hidden = all.length < 2;
    });
    totalForms.value = String(all.length);
  }

  function addRow() {
    var row = template.content.firstElementChild.cloneNode(true);
    rows.appendChild(row);
    renumber();
    wireSearch(row);
    field(row, "product").focus();
    document.body.dispatchEvent(new Event("lines-changed"));
  }

  if (rows && template && totalForms) {
    addButton.hidden = false;
    addButton.addEventListener("click", addRow);
    rows.addEventListener("click", function (event) {
      var button = event.target.closest("[data-remove-line]");
      if (!button) return;
      button.closest("[data-line]").remove();
      renumber();
      recompute();
      document.body.dispatchEvent(new Event("lines-changed"));
    });
    rows.addEventListener("input", recompute);
    renumber();
    recompute();
  }

  // --- search-as-you-type -------------------------------------------------------------------
  var endpoints = {
    products: form.getAttribute("data-search-products"),
    vendor: form.getAttribute("data-search-partners"),
    customer: form.getAttribute("data-search-customers"),
  };
  var listCount = 0;

  function statusFor(input) {
    var status = input.parentNode.querySelector(".search-status");
    if (!status) {
      status = document.createElement("p");
      status.className = "search-status";
      status.setAttribute("aria-live", "polite");
      input.insertAdjacentElement("afterend", status);
    }
    return status;
  }

  function refInput(input) {
    return form.querySelector("[name='" + input.name + "_ref']");
  }

  function choose(input, result) {
    var ref = refInput(input);
    if (ref) ref.value = result ? result.ref : "";
    if (!result || input.getAttribute("data-search") !== "products") return;
    var row = input.closest("[data-line]");
    if (row) {
      var price = field(row, "unit_price");
      if (price && price.value === "" && result.unit_price) price.value = result.unit_price;
      var uom = field(row, "uom");
      if (uom) uom.value = result.uom || "";
      recompute();
    }
    var category = form.querySelector("[name=category]");
    if (category && category.value === "" && result.category) {
      category.value = result.category;
      category.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function wireSearch(root) {
    root.querySelectorAll("[data-search]").forEach(function (input) {
      if (input.hasAttribute("data-search-wired")) return;
      input.setAttribute("data-search-wired", "");
      var url = endpoints[input.getAttribute("data-search")];
      if (!url) return;
      var list = document.createElement("datalist");
      listCount += 1;
      list.id = "search-options-" + listCount;
      input.insertAdjacentElement("afterend", list);
      input.setAttribute("list", list.id);
      var results = [];
      var timer = null;
      var asked = "";

      input.addEventListener("input", function () {
        var picked = results.find(function (r) { return r.label === input.value; });
        choose(input, picked || null);
        if (picked) return;
        window.clearTimeout(timer);
        var term = input.value.trim();
        if (term.length < 2 || term === asked) return;
        timer = window.setTimeout(function () {
          asked = term;
          fetch(url + "?q=" + encodeURIComponent(term), {
            headers: { Accept: "application/json" },
            credentials: "same-origin",
          })
            .then(function (response) {
              if (!response.ok) throw new Error(String(response.status));
              return response.json();
            })
            .then(function (answer) {
              if (input.value.trim() !== term) return;
              results = answer.results || [];
              list.replaceChildren.apply(list, results.map(function (r) {
                var option = document.createElement("option");
                option.value = r.label;
                return option;
              }));
              var status = statusFor(input);
              status.classList.toggle("warn", Boolean(answer.error));
              status.textContent = answer.error
                || (results.length ? "" : "Nothing in Odoo matches; the name is kept as typed.");
            })
            .catch(function () {
              var status = statusFor(input);
              status.classList.add("warn");
              status.textContent = "Odoo could not be searched just now; type the name.";
            });
        }, 250);
      });
    });
  }

  wireSearch(form);
})();
