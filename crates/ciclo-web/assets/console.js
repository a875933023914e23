// ciclo console: progressive enhancement only. Every page works without this script.
// - copy buttons ([data-copy] names the element whose value or text is copied)
// - "select all" checkbox of the customer list ([data-select-all] names the checkbox group)
// - confirmation before destructive buttons ([data-confirm] holds the question)
// - infinite scroll of the timeline (a[data-fragment] fetches the next items as HTML)
// - the segment editor: preview without reloading (form[data-preview-url]; Ctrl+Enter in the
//   definition), "go to the error" (selects the text an error is about), "use this example"
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

  function setupSelectRange(root) {
    root.querySelectorAll("[data-select-range]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var field = document.querySelector(button.getAttribute("data-select-range"));
        if (!field) return;
        var start = parseInt(button.getAttribute("data-start"), 10) || 0;
        var end = parseInt(button.getAttribute("data-end"), 10) || start;
        field.focus();
        field.setSelectionRange(start, Math.max(start + (end > start ? 0 : 1), end));
      });
    });
  }

  function setupExamples() {
    document.querySelectorAll("[data-insert]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.querySelector(button.getAttribute("data-insert"));
        var field = document.querySelector(button.getAttribute("data-target"));
        if (!source || !field) return;
        var text = source.textContent;
        field.focus();
        field.select();
        // insertText keeps the browser's undo history; assigning the value does not.
        var inserted = false;
        try { inserted = document.execCommand("insertText", false, text); } catch (e) { inserted = false; }
        if (!inserted || field.value !== text) field.value = text;
        field.scrollIntoView({ block: "center" });
      });
    });
  }

  function setupSegmentPreview() {
    var form = document.querySelector("form[data-preview-url]");
    if (!form) return;
    var button = form.querySelector('button[name="intent"][value="preview"]');
    var definition = form.querySelector("#f-definition");
    if (!button || !definition) return;
    var busy = false;

    function replace(from, id) {
      var fresh = from.querySelector("#" + id);
      var old = document.getElementById(id);
      if (fresh && old) old.replaceWith(fresh);
    }

    function fallback() {
      // Without the fragment, the plain form does the same.
      var intent = document.createElement("input");
      intent.type = "hidden";
      intent.name = "intent";
      intent.value = "preview";
      form.appendChild(intent);
      form.submit();
    }

    function preview() {
      if (busy) return;
      busy = true;
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      var body = new URLSearchParams(new FormData(form));
      fetch(form.getAttribute("data-preview-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html" },
        body: body.toString(),
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var holder = document.createElement("template");
          holder.innerHTML = html;
          var content = holder.content;
          replace(content, "definition-errors");
          replace(content, "segment-preview");
          var summary = content.querySelector("#editor-form-errors");
          var slot = document.getElementById("editor-form-errors-slot");
          if (summary && slot) slot.replaceChildren(summary);
          var errors = document.getElementById("definition-errors");
          var failed = !!(errors && errors.querySelector(".definition-error"));
          var field = definition.closest(".field");
          if (field) field.classList.toggle("has-error", failed);
          if (failed) definition.setAttribute("aria-invalid", "true");
          else definition.removeAttribute("aria-invalid");
          if (errors) setupSelectRange(errors);
        })
        .catch(fallback)
        .then(function () {
          busy = false;
          button.disabled = false;
          button.removeAttribute("aria-busy");
        });
    }

    button.addEventListener("click", function (event) {
      event.preventDefault();
      preview();
    });
    definition.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        preview();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy(document);
    setupSelectAll();
    setupConfirm();
    setupTimeline();
    setupSelectRange(document);
    setupExamples();
    setupSegmentPreview();
  });
})();
