// ciclo console: progressive enhancement only. Every page works without this script.
// - copy buttons ([data-copy] names the element whose value or text is copied)
// - "select all" checkbox of the customer list ([data-select-all] names the checkbox group)
// - confirmation before destructive buttons ([data-confirm] holds the question)
// - infinite scroll of the timeline (a[data-fragment] fetches the next items as HTML)
(function () {
  "use strict";

  function setupCopy(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var target = document.querySelector(button.getAttribute("data-copy"));
        if (!target) return;
        var text = "value" in target && target.value !== undefined ? target.value : target.textContent;
        var label = button.textContent;
        var done = function () {
          button.textContent = button.getAttribute("data-copied") || "✓";
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(target); done(); });
        } else {
          fallbackCopy(target);
          done();
        }
      });
    });
  }

  function fallbackCopy(target) {
    if (typeof target.select === "function") {
      target.select();
      try { document.execCommand("copy"); } catch (e) { /* the text stays selected */ }
    }
  }

  function setupSelectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      var name = all.getAttribute("data-select-all");
      var form = all.form || document;
      var boxes = function () { return form.querySelectorAll('input[type="checkbox"][name="' + name + '"]'); };
      all.hidden = false;
      all.addEventListener("change", function () {
        boxes().forEach(function (box) { box.checked = all.checked; });
      });
    });
  }

  function setupConfirm() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
      if (button && !window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  }

  function setupTimeline() {
    var list = document.getElementById("timeline-list");
    if (!list) return;
    var loading = false;
    var observer = "IntersectionObserver" in window
      ? new IntersectionObserver(function (entries) {
          entries.forEach(function (entry) { if (entry.isIntersecting) load(entry.target); });
        }, { rootMargin: "200px" })
      : null;

    function load(link) {
      if (loading) return;
      loading = true;
      var item = link.closest("li");
      link.setAttribute("aria-busy", "true");
      fetch(link.getAttribute("data-fragment"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          if (observer) observer.unobserve(link);
          item.insertAdjacentHTML("beforebegin", html);
          item.remove();
          watch();
        })
        .catch(function () {
          // Leave the link: without the script it still opens the next page.
          link.removeAttribute("aria-busy");
        })
        .then(function () { loading = false; });
    }

    function watch() {
      var link = list.querySelector(".timeline-more a[data-fragment]");
      if (!link) return;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        load(link);
      });
      if (observer) observer.observe(link);
    }
    watch();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy(document);
    setupSelectAll();
    setupConfirm();
    setupTimeline();
  });
})();
