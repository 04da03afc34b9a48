// Moor dashboard: live refresh by server-sent events, and a confirmation before weighty actions.
// No inline script anywhere (the Content-Security-Policy forbids it); this file is all there is.
//
// The page knows the position ("epoch.changes") its content was read at: from data-position, then from
// each refreshed fragment's X-Moor-Position. The event stream names the position it is at when it opens
// and after every change the page cares about; a later position than the content's means a refresh.
// So a change that came between the page's rendering and its stream, or while the stream reconnected,
// is not missed, however the two were ordered. A refresh that fails is tried again after a backoff, and
// a stream the browser gave up on (a refused reconnect) is opened again after one: nothing polls.
(function () {
  "use strict";
  var FIRST_RETRY_MS = 1000;
  var LONGEST_RETRY_MS = 30000;
  var MOST_RETRIES = 8;  // about two minutes of trying; then the next change (or a reload) tries again
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

  function showLive(on, title) {
    if (indicator) { indicator.className = on ? "live on" : "live off"; indicator.title = title; }
  }

  function backoff(failures) {
    return Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * Math.pow(2, Math.max(0, failures - 1)));
  }

  function parsePosition(text) {
    var parts = String(text || "").split(".");
    var changes = Number(parts[1]);
    return parts.length === 2 && isFinite(changes) ? { epoch: parts[0], changes: changes } : null;
  }

  function isLater(position, than) {
    return than === null || position.epoch !== than.epoch || position.changes > than.changes;
  }

  var shown = parsePosition(body.getAttribute("data-position"));
  var heard = shown;
  var wanted = false;
  var refreshing = false;
  var failures = 0;
  var retry = null;
  var streaming = false;

  function show(html) {
    var main = document.getElementById("content");
    var active = document.activeElement && document.activeElement.name === "q";
    main.innerHTML = html;
    confirmForms(main);
    if (active) {
      var search = main.querySelector("input[name=q]");
      if (search) { search.focus(); }
    }
    body.setAttribute("data-refreshed", String(Date.now()));
  }

  function refresh() {
    if (!wanted || refreshing || retry !== null) { return; }
    wanted = false;
    refreshing = true;
    fetch(window.location.href, { headers: { "X-Moor-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected) {  // the session ended: the login page
          window.location.assign(response.url);
          throw new Error("redirected");
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }  // a 403 may be a review that failed
        var position = parsePosition(response.headers.get("X-Moor-Position"));
        return response.text().then(function (html) {
          show(html);
          if (position !== null) { shown = position; }
          failures = 0;
          // A change told during the fetch is shown already when the fragment was read after it.
          wanted = heard !== null && shown !== null && heard.epoch === shown.epoch && heard.changes > shown.changes;
          if (streaming) { showLive(true, "live: changes appear as they happen"); }
        });
      })
      .catch(function () {
        failures += 1;
        wanted = failures <= MOST_RETRIES;
        if (!wanted) {
          showLive(false, "could not refresh: reload the page");
          return;
        }
        showLive(false, "could not refresh; trying again");
        retry = window.setTimeout(function () { retry = null; refresh(); }, backoff(failures));
      })
      .finally(function () {
        refreshing = false;
        refresh();
      });
  }

  function hear(event) {
    var position = parsePosition(event.data);
    if (position === null) { return; }
    heard = position;
    if (!isLater(position, shown)) { return; }
    wanted = true;
    if (retry !== null) { window.clearTimeout(retry); retry = null; }  // a new change: try again now
    refresh();
  }

  var url = body.getAttribute("data-events");
  var reopenings = 0;
  function listen() {
    var source = new EventSource(url);
    source.addEventListener("open", function () {
      streaming = true;
      reopenings = 0;
      showLive(true, "live: changes appear as they happen");
    });
    source.addEventListener("change", hear);
    source.addEventListener("error", function () {
      streaming = false;
      showLive(false, "reconnecting");
      if (source.readyState === EventSource.CLOSED) {  // a refused reconnect: the browser gave up, the page does not
        source.close();
        reopenings += 1;
        wanted = true;  // a refresh also finds out whether the session ended (it leads to the login page)
        refresh();
        if (reopenings <= MOST_RETRIES) {
          window.setTimeout(listen, backoff(reopenings));
        } else {
          showLive(false, "disconnected: reload the page");
        }
      }
    });
  }

  confirmForms(document);
  if (url && window.EventSource) { listen(); }
})();
