/* Falconet web UI front end: plain JavaScript, no build step.
 *
 * Alert data is attacker-controlled (a process can be named "<script>"), so it only ever
 * reaches the page as text nodes: el() turns string children into document.createTextNode
 * and nothing here assigns innerHTML.  The Content-Security-Policy forbids inline scripts as
 * a second line of defence.  Every URL is relative to <base href>, so the UI works under any
 * sub-path behind a reverse proxy.
 */
(function () {
  "use strict";

  var PRIORITIES = ["Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"];
  var RANGES = [["15min", "15 minutes"], ["1h", "1 hour"], ["6h", "6 hours"], ["24h", "24 hours"],
                ["7d", "7 days"], ["30d", "30 days"], ["", "all time"]];
  var FILTER_KEYS = ["priority", "rule", "source", "hostname", "tags", "filter", "since", "from", "to"];
  var CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var PAGE = document.body.dataset.page;
  var main = document.getElementById("main");
  var liveStatus = document.getElementById("live-status");
  var basePath = new URL(document.baseURI).pathname;   // e.g. "/falconet/"

  // -- DOM helpers -------------------------------------------------------------------------

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "style") Object.assign(node.style, v);   // CSSOM: allowed by the CSP
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function prioBadge(p) { return el("span", {"class": "prio prio-" + String(p).toLowerCase(), text: p}); }

  function fmtTime(iso) {
    // "2025-04-02T15:15:03.434319636Z" → local "2025-04-02 17:15:03.434"
    var d = new Date(iso.replace(/(\.\d{3})\d*/, "$1"));
    if (isNaN(d)) return iso;
    function p2(n) { return (n < 10 ? "0" : "") + n; }
    var ms = String(d.getMilliseconds()); while (ms.length < 3) ms = "0" + ms;
    return d.getFullYear() + "-" + p2(d.getMonth() + 1) + "-" + p2(d.getDate()) + " " +
      p2(d.getHours()) + ":" + p2(d.getMinutes()) + ":" + p2(d.getSeconds()) + "." + ms;
  }

  function fieldValue(v) {
    if (v === null) return el("span", {"class": "na", text: "<NA>"});
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  // -- server access -----------------------------------------------------------------------

  function relativeHere() {
    var path = location.pathname;
    if (path.indexOf(basePath) === 0) path = "/" + path.slice(basePath.length);
    return path + location.search;
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401) {
          location.href = "login?next=" + encodeURIComponent(relativeHere());
          throw new Error("signed out");
        }
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
          return body;
        });
      });
  }

  function showError(where, err) {
    clear(where).appendChild(el("p", {"class": "error", role: "alert", text: "Error: " + err.message}));
  }

  // -- filters in the URL --------------------------------------------------------------------

  function currentFilters() {
    var q = new URLSearchParams(location.search), out = new URLSearchParams();
    FILTER_KEYS.forEach(function (k) { q.getAll(k).forEach(function (v) { if (v) out.append(k, v); }); });
    return out;
  }

  function setFilters(params, keepPage) {
    var q = new URLSearchParams(params.toString());
    if (!keepPage) q.delete("page");
    var s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  // -- live updates ----------------------------------------------------------------------------

  var liveHandlers = [];
  function onLive(fn) { liveHandlers.push(fn); }

  function startLive() {
    var lastId = null, pollTimer = null;
    function fire(id) {
      if (lastId !== null && id > lastId) liveHandlers.forEach(function (fn) { fn(id); });
      if (lastId === null || id > lastId) lastId = id;
    }
    function status(text, cls) { liveStatus.textContent = text; liveStatus.className = "live " + cls; }
    function poll() {
      getJSON("api/v1/events/search?limit=1").then(function (r) { status("● live (polling)", "on"); fire(r.last_id); })
        .catch(function () { status("○ offline", "off"); });
    }
    if (!window.EventSource) { pollTimer = setInterval(poll, 5000); poll(); return; }
    var es = new EventSource("api/v1/events/stream");
    es.addEventListener("hello", function (e) { status("● live", "on"); fire(JSON.parse(e.data).last_id); });
    es.addEventListener("alerts", function (e) { status("● live", "on"); fire(JSON.parse(e.data).last_id); });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED && !pollTimer) {
        pollTimer = setInterval(poll, 5000);   // e.g. a proxy that does not pass event streams
        poll();
      } else {
        status("○ reconnecting", "off");
      }
    };
  }

  function throttle(fn, ms) {
    var timer = null, again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(function () { timer = null; if (again) { again = false; fn(); } }, ms);
    };
  }

  // -- dashboard -----------------------------------------------------------------------------

  function rangeSelect(value, onchange) {
    return el("select", {id: "range", onchange: onchange},
      RANGES.map(function (r) { return el("option", {value: r[0], selected: r[0] === value, text: r[1]}); }));
  }

  function barList(title, field, results, filterKey) {
    var keys = Object.keys(results), max = 0;
    keys.forEach(function (k) { max = Math.max(max, results[k]); });
    var body = keys.length ? el("ul", {"class": "bars"}, keys.slice(0, 12).map(function (k) {
      var q = new URLSearchParams(currentFilters()); q.set(filterKey, k);
      return el("li", null,
        el("a", {href: "events?" + q.toString(), title: k, text: k}),
        el("span", {"class": "bar"}, el("span", {"class": "fill", style: {width: (100 * results[k] / max).toFixed(1) + "%"}})),
        el("span", {"class": "n", text: results[k]}));
    })) : el("p", {"class": "empty", text: "no alerts"});
    return el("section", {"class": "card", id: "by-" + field}, el("h2", {text: title}), body);
  }

  function timelineSvg(t) {
    var W = 900, H = 180, pad = 24, n = t.buckets, totals = new Array(n).fill(0), max = 0;
    Object.keys(t.series).forEach(function (p) { t.series[p].forEach(function (c, i) { totals[i] += c; }); });
    totals.forEach(function (c) { max = Math.max(max, c); });
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + (H + pad));
    svg.setAttribute("class", "timeline");
    svg.setAttribute("role", "img");
    var bw = W / n, base = new Array(n).fill(0);
    PRIORITIES.forEach(function (p) {
      var counts = t.series[p]; if (!counts) return;
      counts.forEach(function (c, i) {
        if (!c) return;
        var h = max ? (c / max) * (H - 10) : 0;
        var r = document.createElementNS(ns, "rect");
        r.setAttribute("x", (i * bw + 1).toFixed(1));
        r.setAttribute("y", (H - base[i] - h).toFixed(1));
        r.setAttribute("width", Math.max(1, bw - 2).toFixed(1));
        r.setAttribute("height", h.toFixed(1));
        r.setAttribute("class", "fill-" + p.toLowerCase());
        var tip = document.createElementNS(ns, "title");
        tip.textContent = p + ": " + c;
        r.appendChild(tip);
        svg.appendChild(r);
        base[i] += h;
      });
    });
    [[0, "start", t.start_ns], [W, "end", t.end_ns]].forEach(function (a) {
      var tx = document.createElementNS(ns, "text");
      tx.setAttribute("x", a[0]); tx.setAttribute("y", H + 16); tx.setAttribute("text-anchor", a[1]);
      tx.textContent = fmtTime(new Date(a[2] / 1e6).toISOString());
      svg.appendChild(tx);
    });
    return svg;
  }

  function dashboard() {
    var q = currentFilters();
    if (!q.has("since") && !q.has("from")) q.set("since", "24h");
    var content = el("div", {id: "dash-content"});
    var range = rangeSelect(q.get("since") || "", function () {
      if (range.value) q.set("since", range.value); else q.delete("since");
      q.delete("from"); q.delete("to");
      setFilters(q); refresh();
    });
    clear(main).appendChild(el("div", {"class": "toolbar"}, el("h1", {text: "Dashboard"}),
      el("label", null, "Time range ", range)));
    main.appendChild(content);
    var qs = function () { return q.toString(); };
    function refresh() {
      var s = qs();
      Promise.all([
        getJSON("api/v1/events/count/priority?" + s), getJSON("api/v1/events/count/rule?" + s),
        getJSON("api/v1/events/count/source?" + s), getJSON("api/v1/events/count/hostname?" + s),
        getJSON("api/v1/events/count/tags?" + s), getJSON("api/v1/events/timeline?buckets=60&" + s)
      ]).then(function (r) {
        var prio = r[0].results;
        var chips = el("div", {"class": "chips", id: "priority-counts"}, PRIORITIES.map(function (p) {
          var link = new URLSearchParams(q); link.set("priority", p);
          return el("a", {"class": "chip prio-" + p.toLowerCase(), href: "events?" + link.toString()},
            el("span", {"class": "label", text: p}), el("span", {"class": "count", text: prio[p] || 0}));
        }));
        var legend = el("div", {"class": "legend"}, PRIORITIES.filter(function (p) { return r[5].series[p]; })
          .map(function (p) { return el("span", null, el("i", {"class": "fill-" + p.toLowerCase()}), p); }));
        clear(content);
        append(content, [
          el("p", {"class": "total", id: "total-count", text: r[0].statistics.all + " alerts"}), chips,
          el("section", {"class": "card wide", id: "timeline"}, el("h2", {text: "Alerts over time by priority"}),
            timelineSvg(r[5]), legend),
          el("div", {"class": "grid"},
            barList("By rule", "rule", r[1].results, "rule"), barList("By source", "source", r[2].results, "source"),
            barList("By hostname", "hostname", r[3].results, "hostname"), barList("By tag", "tags", r[4].results, "tags"))
        ]);
      }).catch(function (e) { showError(content, e); });
    }
    refresh();
    onLive(throttle(refresh, 5000));   // relative ranges ("since") move with the clock
  }

  // -- events table ----------------------------------------------------------------------------

  function events() {
    var q = currentFilters(), page = parseInt(new URLSearchParams(location.search).get("page") || "1", 10);
    var limit = parseInt(new URLSearchParams(location.search).get("limit") || "50", 10);
    var maxSeenId = 0, pendingNew = 0;

    function input(name, label, listId) {
      return el("label", null, label, el("input", {name: name, id: "f-" + name, value: q.get(name) || "",
        list: listId || null, autocomplete: "off"}));
    }
    var prioBoxes = el("fieldset", {"class": "prios", id: "f-priority"}, el("legend", {text: "Priority"}),
      PRIORITIES.map(function (p) {
        var on = (q.get("priority") || "").split(",").indexOf(p) >= 0;
        return el("label", {"class": "prio-check"}, el("input", {type: "checkbox", value: p, checked: on}), prioBadge(p));
      }));
    var since = el("select", {name: "since", id: "f-since"},
      RANGES.map(function (r) { return el("option", {value: r[0], selected: r[0] === (q.get("since") || ""), text: r[1]}); }));
    var form = el("form", {"class": "filters", id: "filters"},
      prioBoxes,
      el("div", {"class": "row"},
        input("rule", "Rule", "dl-rule"), input("source", "Source", "dl-source"),
        input("hostname", "Hostname", "dl-hostname"), input("tags", "Tag", "dl-tags")),
      el("div", {"class": "row"},
        el("label", {"class": "grow"}, "Search output", el("input", {name: "filter", id: "f-filter", type: "search",
          value: q.get("filter") || "", placeholder: "text anywhere in the rule or output"})),
        el("label", null, "Since", since),
        el("label", null, "From", el("input", {name: "from", id: "f-from", type: "datetime-local", step: "1", value: toLocalInput(q.get("from"))})),
        el("label", null, "To", el("input", {name: "to", id: "f-to", type: "datetime-local", step: "1", value: toLocalInput(q.get("to"))})),
        el("button", {type: "submit", id: "apply", text: "Apply"}),
        el("button", {type: "button", id: "clear", text: "Clear", onclick: function () {
          q = new URLSearchParams(); setFilters(q); events(); }})),
      ["rule", "source", "hostname", "tags"].map(function (f) { return el("datalist", {id: "dl-" + f}); }));
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      q = new URLSearchParams();
      var prios = Array.prototype.filter.call(prioBoxes.querySelectorAll("input"), function (b) { return b.checked; })
        .map(function (b) { return b.value; });
      if (prios.length) q.set("priority", prios.join(","));
      ["rule", "source", "hostname", "tags", "filter"].forEach(function (k) {
        var v = form.elements[k].value.trim(); if (v) q.set(k, v);
      });
      if (since.value) q.set("since", since.value);
      ["from", "to"].forEach(function (k) {
        var v = form.elements[k].value; if (v) q.set(k, new Date(v).toISOString());
      });
      page = 1; setFilters(q); load();
    });
    prioBoxes.addEventListener("change", function () { form.requestSubmit(); });
    since.addEventListener("change", function () { form.requestSubmit(); });

    var summary = el("div", {"class": "summary"});
    var banner = el("button", {type: "button", "class": "banner", id: "new-banner", hidden: true,
      onclick: function () { page = 1; load(); }});
    var table = el("div", {id: "events-table"});
    var pager = el("div", {"class": "pager", id: "pager"});
    clear(main);
    append(main, [el("div", {"class": "toolbar"}, el("h1", {text: "Events"})), form, summary, banner, table, pager]);

    ["rule", "source", "hostname", "tags"].forEach(function (f) {
      // suggestions from the last day only: cheap even with millions of alerts stored
      getJSON("api/v1/events/count/" + f + "?limit=200&since=24h").then(function (r) {
        var dl = document.getElementById("dl-" + f);
        Object.keys(r.results).forEach(function (k) { dl.appendChild(el("option", {value: k})); });
      }).catch(function () {});
    });

    function load(highlightAfter) {
      var s = new URLSearchParams(q); s.set("page", page); s.set("limit", limit);
      var keep = new URLSearchParams(q); if (page > 1) keep.set("page", page);
      setFilters(keep, true);
      return getJSON("api/v1/events/search?" + s.toString()).then(function (r) {
        var total = r.statistics.all, pages = Math.max(1, Math.ceil(total / limit));
        pendingNew = 0; banner.hidden = true;
        var exp = new URLSearchParams(q);
        clear(summary);
        var capped = r.statistics.text_matches_capped;
        append(summary, [el("span", {id: "result-count", text: total + (capped ? "+" : "") + (total === 1 ? " alert" : " alerts")}),
          capped ? el("span", {"class": "note", id: "capped-note",
            text: "the search text matches more than " + capped + " alerts; only the newest " + capped +
                  " of those are searched: make the text more specific"}) : null,
          el("span", {"class": "export"}, "Export: ",
            el("a", {id: "export-json", href: "api/v1/events/export?format=json&" + exp.toString(), download: "falco_events.json", text: "JSON"}),
            " ", el("a", {id: "export-csv", href: "api/v1/events/export?format=csv&" + exp.toString(), download: "falco_events.csv", text: "CSV"}))]);
        clear(table);
        if (!r.results.length) { table.appendChild(el("p", {"class": "empty", text: "No alerts match."})); }
        else {
          table.appendChild(el("table", {"class": "events"},
            el("thead", null, el("tr", null, ["Time", "Priority", "Rule", "Source", "Hostname", "Tags", "Output"]
              .map(function (h) { return el("th", {text: h}); }))),
            el("tbody", null, r.results.map(function (ev) {
              maxSeenId = Math.max(maxSeenId, ev.id);
              var isNew = highlightAfter !== undefined && ev.id > highlightAfter;
              var href = "events/" + encodeURIComponent(ev.uuid);
              return el("tr", {"class": "event" + (isNew ? " new" : ""), "data-id": ev.id, "data-uuid": ev.uuid,
                onclick: function (e) { if (e.target.tagName !== "A") location.href = href; }},
                el("td", {"class": "time"}, el("a", {href: href, text: fmtTime(ev.time)})),
                el("td", null, prioBadge(ev.priority)),
                el("td", {"class": "rule", text: ev.rule}),
                el("td", {text: ev.source}),
                el("td", {text: ev.hostname}),
                el("td", {"class": "tags"}, ev.tags.map(function (t) { return el("span", {"class": "tag", text: t}); })),
                el("td", {"class": "output", text: ev.message}));
            }))));
        }
        clear(pager);
        append(pager, [
          el("button", {type: "button", id: "prev", disabled: page <= 1, text: "‹ Newer",
            onclick: function () { page--; load(); }}),
          el("span", {id: "page-info", text: "Page " + page + " of " + pages}),
          el("button", {type: "button", id: "next", disabled: page >= pages, text: "Older ›",
            onclick: function () { page++; load(); }}),
          el("label", null, "Per page ", el("select", {id: "limit", onchange: function (e) {
            limit = parseInt(e.target.value, 10); page = 1; load(); }},
            [25, 50, 100, 200, 500].map(function (n) { return el("option", {value: n, selected: n === limit, text: n}); })))
        ]);
      }).catch(function (e) { showError(table, e); });
    }
    load();
    onLive(throttle(function () {
      if (page === 1) { load(maxSeenId); return; }
      getJSON("api/v1/events/count?after_id=" + maxSeenId + "&" + q.toString()).then(function (r) {
        pendingNew = r.statistics.all;
        if (pendingNew) { banner.hidden = false; banner.textContent = pendingNew + " new alerts: show the newest"; }
      }).catch(function () {});
    }, 1000));
  }

  function toLocalInput(iso) {
    if (!iso) return "";
    var d = new Date(iso); if (isNaN(d)) return "";
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  }

  // -- detail ----------------------------------------------------------------------------------

  function detail() {
    var uuid = document.body.dataset.uuid;
    clear(main).appendChild(el("p", {text: "Loading…"}));
    getJSON("api/v1/events/" + encodeURIComponent(uuid)).then(function (ev) {
      var keys = Object.keys(ev.output_fields).sort();
      var exact = ev.fields_text || {};   // exact text: JS numbers lose digits of nanosecond times
      clear(main);
      append(main, [
        el("div", {"class": "toolbar"}, el("a", {href: "events", id: "back", text: "‹ Events",
          onclick: function (e) { if (document.referrer.indexOf(location.origin + basePath + "events") === 0) { e.preventDefault(); history.back(); } }}),
          el("h1", {id: "detail-rule", text: ev.rule})),
        el("section", {"class": "card detail", id: "detail"},
          el("dl", null,
            el("dt", {text: "Time"}), el("dd", {id: "detail-time", text: fmtTime(ev.time) + "  (" + ev.time + ")"}),
            el("dt", {text: "Priority"}), el("dd", null, prioBadge(ev.priority)),
            el("dt", {text: "Source"}), el("dd", {id: "detail-source", text: ev.source}),
            el("dt", {text: "Hostname"}), el("dd", {id: "detail-hostname", text: ev.hostname}),
            el("dt", {text: "Tags"}), el("dd", null, ev.tags.map(function (t) { return el("span", {"class": "tag", text: t}); })),
            el("dt", {text: "UUID"}), el("dd", {text: ev.uuid})),
          el("h2", {text: "Output"}), el("pre", {"class": "output", id: "detail-output", text: ev.output}),
          el("h2", {text: "Output fields (" + keys.length + ")"}),
          el("table", {"class": "fields", id: "detail-fields"}, el("tbody", null, keys.map(function (k) {
            var v = ev.output_fields[k];
            return el("tr", null, el("th", {text: k}),
              el("td", null, v === null ? fieldValue(v) : (k in exact ? exact[k] : fieldValue(v))));
          }))),
          el("h2", {text: "JSON"}), el("pre", {"class": "json", id: "detail-json", text: ev.falco_json || JSON.stringify(ev, null, 2)}))
      ]);
    }).catch(function (e) { showError(main, e); });
  }

  // -- start -------------------------------------------------------------------------------------

  if (PAGE === "dashboard") dashboard();
  else if (PAGE === "events") events();
  else if (PAGE === "detail") detail();
  startLive();
})();
