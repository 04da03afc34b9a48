// Moor dashboard: live refresh by server-sent events, and a confirmation before weighty actions.
// No inline script anywhere (the Content-Security-Policy forbids it); this file is all there is.
(function () {
  "use strict";
  var body = document.body;
  var indicator = document.getElementById("live-state");

  function confirmForms(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  var refreshing = false;
  var again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.href, { headers: { "X-Moor-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var main = document.getElementById("content");
        var active = document.activeElement && document.activeElement.name === "q";
        main.innerHTML = html;
        confirmForms(main);
        if (active) {
          var search = main.querySelector("input[name=q]");
          if (search) { search.focus(); }
        }
        body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next change tries again */ })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  confirmForms(document);
  var url = body.getAttribute("data-events");
  if (url && window.EventSource) {
    var opened = false;
    var source = new EventSource(url);
    source.addEventListener("open", function () {
      if (indicator) { indicator.className = "live on"; indicator.title = "live: changes appear as they happen"; }
      if (opened) { refresh(); }  // whatever changed while reconnecting
      opened = true;
    });
    source.addEventListener("change", refresh);
    source.addEventListener("error", function () {
      if (indicator) { indicator.className = "live off"; indicator.title = "reconnecting"; }
    });
  }
})();
