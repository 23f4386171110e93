// Herald dashboard: live refresh of the overview (the only script; every page works without
// it). Every few seconds, fetch the server-rendered fragment named by data-live and swap it
// in; on any failure keep the last picture and try again later.
(function () {
  "use strict";
  var target = document.getElementById("live");
  if (!target || !window.fetch) { return; }
  var url = target.getAttribute("data-live");
  var every = 3000;
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        target.innerHTML = html;
        target.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* keep the last picture */ })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
