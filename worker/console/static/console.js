/* The console's page behaviour: live activity rows and the overview charts.
   Loaded as a file (the CSP forbids inline scripts); every row it inserts is HTML the
   server rendered and escaped. */
(function () {
  "use strict";
  var EVERY_MS = 2000;

  function liveActivity(body) {
    var url = body.getAttribute("data-live-url");
    var cursor = body.getAttribute("data-cursor") || "0-0";
    function poll() {
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "after=" + encodeURIComponent(cursor), {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      })
        .then(function (res) {
          if (!res.ok) { throw new Error(res.status); }
          cursor = res.headers.get("X-Activity-Cursor") || cursor;
          return res.text();
        })
        .then(function (html) {
          if (html.trim()) {
            var tpl = document.createElement("template");
            tpl.innerHTML = html;
            body.insertBefore(tpl.content, body.firstChild);
            while (body.rows.length > 500) { body.deleteRow(body.rows.length - 1); }
          }
        })
        .catch(function () { /* try again on the next tick */ })
        .then(function () { setTimeout(poll, EVERY_MS); });
    }
    setTimeout(poll, EVERY_MS);
  }

  function chart(el, title, labels, colors, data) {
    var series = [{}];
    labels.forEach(function (label, i) {
      series.push({ label: label, stroke: colors[i], width: 2 });
    });
    var opts = {
      title: title,
      width: Math.max(320, el.clientWidth || 900),
      height: 220,
      series: series,
      scales: { x: { time: true } },
    };
    return new uPlot(opts, data, el);
  }

  function overviewCharts(ratesEl) {
    var outcomesEl = document.getElementById("chart-outcomes");
    var src = ratesEl.getAttribute("data-src");
    var rates = null;
    var outcomes = null;
    function draw(d) {
      var r = [d.rates.t, d.rates.events, d.rates.requests];
      var t = d.series.delivered.map(function (_, i) { return d.start + i * d.bucket_s; });
      var o = [t, d.series.delivered, d.series.skipped, d.series.dead, d.series["429"]];
      if (rates === null) {
        rates = chart(ratesEl, "Events/s and requests/s", ["events/s", "requests/s"],
                      ["#1f5fbf", "#8a4fbf"], r);
        outcomes = chart(outcomesEl, "Outcomes per " + d.bucket_s + " s",
                         ["delivered", "skipped", "dead", "429 retries"],
                         ["#1e7b34", "#8a8f98", "#b3261e", "#d08a00"], o);
      } else {
        rates.setData(r);
        outcomes.setData(o);
      }
    }
    function poll() {
      fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) { if (!res.ok) { throw new Error(res.status); } return res.json(); })
        .then(draw)
        .catch(function () { /* try again on the next tick */ })
        .then(function () { setTimeout(poll, EVERY_MS); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.querySelector("tbody[data-live-url]");
    if (body) { liveActivity(body); }
    var ratesEl = document.getElementById("chart-rates");
    if (ratesEl && window.uPlot) { overviewCharts(ratesEl); }
  });
})();
