// The QA console's only script (compiled into the binary). The pages work without it; with
// it, the parts marked data-live refresh every two seconds, Copy buttons copy curl lines,
// a fault rule is checked as it is typed, and forms marked data-confirm ask first.
(function () {
  "use strict";
  var busy = false;

  function editing() {
    var a = document.activeElement;
    return a && a.closest && a.closest("[data-live]") && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }

  function refresh() {
    if (busy || document.hidden || editing()) return;
    var live = document.querySelectorAll("[data-live][id]");
    if (!live.length) return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        live.forEach(function (el) {
          var next = fresh.getElementById(el.id);
          if (!next || next.innerHTML === el.innerHTML) return;
          // Keep open what the tester opened.
          var open = {};
          el.querySelectorAll("details[open]").forEach(function (d, i) { open[i] = true; });
          el.innerHTML = next.innerHTML;
          el.querySelectorAll("details").forEach(function (d, i) { if (open[i]) d.open = true; });
        });
      })
      .catch(function () { /* the mock may be restarting: try again next time */ })
      .then(function () { busy = false; });
  }
  setInterval(refresh, 2000);

  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.copy");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var t = document.createElement("textarea");
      t.value = text; document.body.appendChild(t); t.select();
      try { document.execCommand("copy"); done(); } catch (err) { /* select it by hand */ }
      document.body.removeChild(t);
    }
  });

  // A fault rule is checked as it is typed, by the parser that adding it uses.
  var timer = null;
  document.addEventListener("input", function (e) {
    var field = e.target;
    var url = field.getAttribute && field.getAttribute("data-check");
    var out = document.getElementById(field.id + "-check");
    if (!url || !out) return;
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!field.value.trim()) { out.textContent = ""; out.className = "wide check"; return; }
      fetch(url + "?inject=" + encodeURIComponent(field.value), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (a) {
          out.textContent = a.ok ? "✓ valid" : a.message;
          out.className = "wide check " + (a.ok ? "good" : "bad");
        })
        .catch(function () { out.textContent = ""; });
    }, 250);
  });

  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  });
})();
