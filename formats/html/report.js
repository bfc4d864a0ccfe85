/*
 * leakdiff's HTML report: draws the page from the JSON report embedded in
 * the leakdiff-data block (the document of `--format=json`, plus "flame",
 * the flame graph's tree as a flat list of nodes, parents first).
 * Every name comes from a snapshot, so it reaches the page only as text
 * (textContent, d3's .text(), setAttribute): no markup is ever built from
 * data. Bundled into leakdiff by formats/html/embed.py.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("leakdiff-data").textContent);
  var show = data.format === "leakdiff-show";
  var app = document.getElementById("app");

  /* An element with attributes and children; strings become text nodes. */
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
        if (k === "text") e.textContent = attrs[k];
        else if (k === "class") e.className = attrs[k];
        else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
        else e.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      if (Array.isArray(c)) c.forEach(function (x) { if (x) e.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
      else e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function bytes(n) {
    var a = Math.abs(n), units = ["B", "KiB", "MiB", "GiB", "TiB"], u = 0;
    while (a >= 1024 && u < units.length - 1) { a /= 1024; u++; }
    var s = u === 0 ? String(a) : a < 10 ? a.toFixed(2) : a < 100 ? a.toFixed(1) : a.toFixed(0);
    return (n < 0 ? "-" : "") + s + " " + units[u];
  }
  function signedBytes(n) { return (n > 0 ? "+" : "") + bytes(n); }
  function count(n) { return Math.round(n).toLocaleString("en-US"); }
  function signedCount(n) { return (n > 0 ? "+" : "") + count(n); }

  function shortPath(file) {
    var roots = [];
    [data.before, data.after, data.snapshot].forEach(function (s) {
      if (s && s.meta) roots = roots.concat(s.meta.roots || [], s.meta.stdlib || []);
    });
    var best = 0;
    roots.forEach(function (r) {
      if (r && file.indexOf(r + "/") === 0 && r.length + 1 > best) best = r.length + 1;
    });
    return file.slice(best);
  }
  function frameText(f) {
    if (!f) return "";
    if (f.line === undefined) return f.function + " (" + shortPath(f.file).split("/").pop() + ")";
    return shortPath(f.file) + ":" + f.line + (f["function"] ? " in " + f["function"] : "");
  }
  function siteText(s) {
    var t = frameText(s.frames[0]);
    if (s.caller > 0 && s.frames[s.caller]) t += ", called from " + frameText(s.frames[s.caller]);
    return t;
  }
  function badge(state) {
    if (state !== "new" && state !== "gone") return null;
    return el("span", { "class": "badge " + state, text: state });
  }

  /* ---------------------------------------------------------------- header */

  function snapshotCard(title, ref) {
    var m = (ref && ref.meta) || {};
    var cmd = Array.isArray(m.command) ? m.command.join(" ") : (m.command || "");
    var rows = [["File", ref ? ref.path : ""], ["Command", cmd], ["PID", m.pid], ["Time", m.time],
      ["Trigger", m.trigger], ["Label", m.label], ["Runtime", m.runtime]];
    /* An attached agent saw only what was allocated since: the reader must know. */
    if (typeof m.attached === "number" && isFinite(m.attached) && m.attached >= 0)
      rows.push(["Attached", new Date(m.attached * 1000).toISOString().replace(/\.\d+Z$/, "Z") + ", tracing since then"]);
    return el("section", { "class": "card", "aria-label": title },
      el("h2", { text: title }),
      el("dl", null, rows.filter(function (r) { return r[1] !== undefined && r[1] !== ""; }).map(function (r) {
        return el("div", null, el("dt", { text: r[0] }), el("dd", { text: String(r[1]) }));
      })));
  }

  function header() {
    var h = el("header", null, el("h1", { text: show ? "leakdiff show" : "leakdiff diff" }));
    var cards = el("div", { "class": "cards" });
    if (show) {
      cards.appendChild(snapshotCard("Snapshot", data.snapshot));
      var t = data.totals || {};
      cards.appendChild(el("section", { "class": "card", "aria-label": "Totals" }, el("h2", { text: "Totals" }),
        el("dl", null,
          el("div", null, el("dt", { text: "Heap" }), el("dd", { text: bytes(t.heap_bytes || 0) + " in " + count(t.heap_blocks || 0) + " blocks" })),
          t.native_bytes !== undefined ? el("div", null, el("dt", { text: "of it native" }), el("dd", { text: bytes(t.native_bytes) + " in " + count(t.native_blocks || 0) + " blocks" })) : null,
          el("div", null, el("dt", { text: "Objects" }), el("dd", { text: count(t.objects || 0) + " (" + bytes(t.object_bytes || 0) + ")" })))));
    } else {
      cards.appendChild(snapshotCard("Before", data.before));
      cards.appendChild(snapshotCard("After", data.after));
      var tot = function (label, r) {
        return el("div", null, el("dt", { text: label }), el("dd", null,
          bytes(r.bytes_before) + " → " + bytes(r.bytes_after) + " ",
          el("strong", { "class": r.bytes_delta > 0 ? "grew" : r.bytes_delta < 0 ? "shrank" : "", text: "(" + signedBytes(r.bytes_delta) + ")" }),
          ", " + count(r.count_before) + " → " + count(r.count_after) + " (" + signedCount(r.count_delta) + ")"));
      };
      var dl = el("dl", null, tot("Heap", data.total));
      if (data.native) dl.appendChild(tot("of it native", data.native));
      if (data.objects && (data.objects.count_before || data.objects.count_after)) dl.appendChild(tot("Objects", data.objects));
      if (data.snapshots > 2) dl.appendChild(el("div", null, el("dt", { text: "Trend" }), el("dd", { text: data.snapshots + " snapshots, " + data.intervals + " intervals" })));
      cards.appendChild(el("section", { "class": "card", "aria-label": "Totals" }, el("h2", { text: "Totals" }), dl));
    }
    h.appendChild(cards);
    var v = data.verdict;
    if (v && v.checked) {
      var box = el("section", { id: "verdict", "class": "verdict " + (v.passed ? "pass" : "fail"), role: "status" },
        el("strong", { text: v.passed ? "Within the limits" : "Limits exceeded" }));
      if (v.exceeded && v.exceeded.length)
        box.appendChild(el("ul", null, v.exceeded.map(function (x) { return el("li", { text: x.message }); })));
      h.appendChild(box);
    }
    if (data.native_unexplained)
      h.appendChild(el("p", { "class": "note", text: "Native memory grew " + bytes(data.native_unexplained.bytes) +
        " more than the traced heap explains; record with " + data.native_unexplained.record_with + " to see where." }));
    if (data.freed_at_exit)
      h.appendChild(el("p", { "class": "note", text: "Both snapshots were taken at exit, after the program freed its memory: take snapshots while it runs." }));
    if (data.suspect) {
      var s = data.suspect;
      h.appendChild(el("p", { id: "headline", "class": "headline" },
        el("strong", { text: "Likely leak: " }),
        signedCount(s.count_delta) + " " + s.type + " objects (" + signedBytes(s.bytes_delta) + ")" +
        (s.site ? ", allocated at " + siteText(s.site) : "")));
    }
    return h;
  }

  /* ----------------------------------------------------------- flame graph */

  function buildTree() {
    var cols = data.flame.columns, rows = data.flame.nodes, ix = {};
    cols.forEach(function (c, i) { ix[c] = i; });
    var nodes = rows.map(function (r) {
      return {
        name: r[ix.name], file: r[ix.file], line: r[ix.line], text: r[ix.text], kind: r[ix.kind],
        folded: r[ix.folded], b: r[ix.before], a: r[ix.after], cb: r[ix.count_before],
        ca: r[ix.count_after], g: r[ix.growth], sites: r[ix.sites], match: r[ix.match], lines: r[ix.lines], children: []
      };
    });
    rows.forEach(function (r, i) { if (r[ix.parent] >= 0) nodes[r[ix.parent]].children.push(nodes[i]); });
    return nodes[0];
  }

  function flameSection() {
    var sec = el("section", { id: "flame", "aria-label": "Flame graph" },
      el("h2", { text: show ? "Live memory by traceback" : "Growth by traceback" }));
    app.appendChild(sec);
    var makeChart = typeof flamegraph === "undefined" ? null : flamegraph["default"] || flamegraph;
    if (typeof makeChart !== "function" || !data.flame || !data.flame.nodes.length) {
      sec.appendChild(el("p", { text: "No flame graph in this report." }));
      return sec;
    }
    var root = buildTree();
    var maxDelta = 1;
    (function walk(n, depth) {
      if (depth > 0) maxDelta = Math.max(maxDelta, Math.abs(n.a - n.b));
      n.children.forEach(function (c) { walk(c, depth + 1); });
    })(root, 0);
    /*
     * The heap did not grow by what a frame could show (0.1%, the share the
     * server sums away; a clean or a reversed diff): width by the later
     * size, so that the shrinkage is drawn, not a sliver of noise that grew.
     */
    var mode = show || root.a - root.b < 0.001 * root.a ? "after" : "growth";
    var widthOf = function (d) { return mode === "growth" ? d.g : d.a; };

    var search = el("input", { type: "search", id: "search", placeholder: "Search functions and files", "aria-label": "Search frames" });
    var reset = el("button", { type: "button", id: "reset", text: "Reset zoom" });
    var icicle = el("input", { type: "checkbox", id: "icicle" });
    var widthSel = el("select", { id: "width-mode", "aria-label": "Frame width" },
      el("option", { value: "growth", text: "Width: growth" }), el("option", { value: "after", text: "Width: later size" }));
    widthSel.value = mode;
    if (show) widthSel.disabled = true;
    var found = el("span", { id: "search-result", "class": "search-result", role: "status", "aria-live": "polite" });
    var controls = el("div", { "class": "controls" }, search, reset, el("label", null, icicle, " Icicle (bottom-up)"), widthSel, found);
    var howTo = " Click a frame (or Enter) to zoom, Escape to reset.";
    /* One snapshot has no change to colour: the same red scale says how much memory is below a frame. */
    var legend = show
      ? el("p", { "class": "legend" }, el("span", { "class": "swatch grow" }), " live memory; the stronger the colour, the more bytes below the frame." + howTo)
      : el("p", { "class": "legend" },
        el("span", { "class": "swatch grow" }), " grew ", el("span", { "class": "swatch shrink" }), " shrank ",
        el("span", { "class": "swatch same" }), " unchanged; the stronger the colour, the larger the change." + howTo);
    var chartDiv = el("div", { id: "chart", "class": "chart" });
    var tip = el("div", { id: "tooltip", "class": "tooltip", role: "tooltip", hidden: true });
    sec.appendChild(controls);
    sec.appendChild(legend);
    sec.appendChild(chartDiv);
    document.body.appendChild(tip);

    function colour(d) {
      if (d.highlight) return "#b000d6";
      var delta = d.data.a - d.data.b;
      if (!delta) return "rgb(221,221,221)";
      /* A steep curve with a floor: a leaf that holds a tenth of the growth is plainly red, not pink. */
      var t = 0.3 + 0.7 * Math.min(1, Math.pow(Math.abs(delta) / maxDelta, 0.35));
      if (delta > 0) return "rgb(" + Math.round(245 - 31 * t) + "," + Math.round(215 - 183 * t) + "," + Math.round(215 - 183 * t) + ")";
      return "rgb(" + Math.round(215 - 183 * t) + "," + Math.round(225 - 153 * t) + "," + Math.round(245 - 31 * t) + ")";
    }

    function tipLines(n) {
      var lines = [];
      lines.push(["", n.folded ? n.name + " — " + n.folded + " frames folded" : n.name]);
      if (n.file) lines.push(["", (n.line ? n.file + ":" + n.line : n.file) + (n.lines ? " and other lines" : "")]);
      if (n.text) lines.push(["code", n.text.trim()]);
      if (show) {
        lines.push(["", bytes(n.a) + " in " + count(n.ca) + " blocks"]);
      } else {
        lines.push(["", "bytes " + bytes(n.b) + " → " + bytes(n.a) + " (" + signedBytes(n.a - n.b) + ")"]);
        lines.push(["", "count " + count(n.cb) + " → " + count(n.ca) + " (" + signedCount(n.ca - n.cb) + ")"]);
        if (root.g) lines.push(["", (100 * n.g / root.g).toFixed(1) + "% of the growth"]);
        if (n.match) lines.push(["", "matched across snapshots: " + n.match + (n.sites > 1 ? " (loosest of " + n.sites + " sites)" : "")]);
      }
      if (n.kind) lines.push(["", n.kind + " frame"]);
      return lines;
    }
    function showTip(x, y, d) {
      while (tip.firstChild) tip.removeChild(tip.firstChild);
      tipLines(d.data).forEach(function (l) { tip.appendChild(el("div", { "class": l[0] || null, text: l[1] })); });
      tip.hidden = false;
      var w = tip.offsetWidth, h = tip.offsetHeight;
      var left = Math.min(x + 12, window.scrollX + document.documentElement.clientWidth - w - 4);
      tip.style.left = Math.max(window.scrollX + 4, left) + "px";
      tip.style.top = (y + 16 + h > window.scrollY + window.innerHeight ? y - h - 8 : y + 16) + "px";
    }
    function tooltip() {}
    tooltip.show = function (event, d) { showTip(event.pageX, event.pageY, d); };
    tooltip.hide = function () { tip.hidden = true; };

    var chart = makeChart()
      .width(Math.max(320, chartDiv.clientWidth || app.clientWidth || 960))
      .cellHeight(18)
      .transitionDuration(0)
      .minFrameSize(0)
      .sort(false)
      .inverted(false)
      .getValue(function (d) { return widthOf(d); })
      .setColorMapper(function (d) { return colour(d); })
      .tooltip(tooltip)
      .setSearchMatch(function (d, term) {
        if (!term) return false;
        var t = term.toLowerCase(), n = d.data;
        return (n.name || "").toLowerCase().indexOf(t) >= 0 || (n.file || "").toLowerCase().indexOf(t) >= 0;
      })
      .setSearchHandler(function (results) {
        var set = new Set(results), share = 0;
        results.forEach(function (d) {
          for (var p = d.parent; p; p = p.parent) if (set.has(p)) return;
          share += d.data.g;
        });
        found.textContent = results.length
          ? results.length + " matching frames, " + (root.g ? (100 * share / root.g).toFixed(1) : "0.0") + "% of the growth (" + signedBytes(share) + ")"
          : "no matching frame";
      })
      .setDetailsHandler(function () {})
      .onClick(function () { decorate(); });

    /*
     * As tall as the frames drawn in the current width: d3-flame-graph counts
     * the depth of every node, even those of zero width (the frames below a
     * site that did not grow) and of those under a pixel, which left a blank
     * band above the graph.
     */
    function fitHeight() {
      var deepest = 0, px = chart.width() / (widthOf(root) || 1);
      (function walk(n, depth) {
        if (!(widthOf(n) * px >= 1)) return;
        deepest = Math.max(deepest, depth);
        n.children.forEach(function (c) { walk(c, depth + 1); });
      })(root, 0);
      var h = (deepest + 2) * 18;
      chart.height(h);
      d3.select(chartDiv).select("svg").attr("height", h);
    }
    fitHeight();
    d3.select(chartDiv).datum(root).call(chart);
    /*
     * Drawn at once the first time; animated from then on, when zooming.
     * d3-flame-graph grows each new frame's width over d3's default 250 ms
     * whatever the duration set; an update at duration 0 takes over those
     * transitions, so a page captured as soon as it loads is whole.
     */
    chart.update();
    chart.transitionDuration(250);

    /* Frames are buttons for the keyboard: Tab to one, Enter to zoom, Escape to reset. */
    function decorate() {
      d3.select(chartDiv).selectAll("g.frame").each(function (d) {
        this.setAttribute("tabindex", d.x1 - d.x0 > 0 ? "0" : "-1");
        this.setAttribute("role", "button");
        var n = d.data;
        this.setAttribute("aria-label", n.name + (n.file ? " at " + n.file + (n.line ? ":" + n.line : "") : "") +
          (show ? ", " + bytes(n.a) : ", " + signedBytes(n.a - n.b)));
      });
    }
    decorate();
    chartDiv.addEventListener("keydown", function (ev) {
      var g = ev.target.closest && ev.target.closest("g.frame");
      if (g && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
      }
    });
    chartDiv.addEventListener("focusin", function (ev) {
      var g = ev.target.closest && ev.target.closest("g.frame");
      if (!g) return;
      var r = g.getBoundingClientRect();
      showTip(r.left + window.scrollX, r.top + window.scrollY, d3.select(g).datum());
    });
    chartDiv.addEventListener("focusout", function () { tip.hidden = true; });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { tip.hidden = true; chart.resetZoom(); decorate(); }
    });
    search.addEventListener("input", function () {
      if (search.value) chart.search(search.value);
      else { chart.clear(); found.textContent = ""; }
    });
    reset.addEventListener("click", function () { chart.resetZoom(); decorate(); });
    icicle.addEventListener("change", function () { chart.inverted(icicle.checked); chart.update(); });
    widthSel.addEventListener("change", function () { mode = widthSel.value; fitHeight(); chart.update(); decorate(); });
    var lastWidth = chartDiv.clientWidth;
    window.addEventListener("resize", function () {
      var w = chartDiv.clientWidth;
      if (w && w !== lastWidth) { lastWidth = w; chart.width(Math.max(320, w)); fitHeight(); chart.update(); }
    });
    window.leakdiffChart = chart;
    return sec;
  }

  /* ---------------------------------------------------------------- tables */

  /*
   * A table sortable by each column: cols are {title, value(row), text(row),
   * num}; detail(row) returns the rows shown when a row is expanded.
   */
  function cellClass(c) { return [c.num ? "num" : "", c.cls || ""].join(" ").trim() || null; }

  function table(id, caption, rows, cols, detail) {
    var t = el("table", { id: id, "class": "rows" }, el("caption", { text: caption }));
    var tbody = el("tbody");
    var heads = cols.map(function (c) {
      var b = el("button", { type: "button", text: c.title });
      var th = el("th", { scope: "col", "class": cellClass(c) }, b);
      b.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir < 0 ? "descending" : "ascending");
        var order = groups.slice().sort(function (x, y) {
          var a = c.value(x.row), b2 = c.value(y.row);
          return (a < b2 ? -1 : a > b2 ? 1 : 0) * dir || x.index - y.index;
        });
        order.forEach(function (g) { g.trs.forEach(function (tr) { tbody.appendChild(tr); }); });
      });
      return th;
    });
    t.appendChild(el("thead", null, el("tr", null, detail ? el("th", { scope: "col", "class": "exp" }, el("span", { "class": "sr", text: "Expand" })) : null, heads)));
    var groups = rows.map(function (r, index) {
      var tr = el("tr", { "class": r.state ? "state-" + r.state : null });
      var trs = [tr];
      if (detail) {
        var sub = detail(r);
        var cell = el("td", { "class": "exp" });
        if (sub.length) {
          var btn = el("button", { type: "button", "aria-expanded": "false", "aria-label": "Show details", text: "▸" });
          btn.addEventListener("click", function () {
            var open = btn.getAttribute("aria-expanded") !== "true";
            btn.setAttribute("aria-expanded", String(open));
            btn.textContent = open ? "▾" : "▸";
            sub.forEach(function (s) { s.hidden = !open; });
          });
          cell.appendChild(btn);
          sub.forEach(function (s) { s.hidden = true; s.classList.add("detail"); });
          trs = trs.concat(sub);
        }
        tr.appendChild(cell);
      }
      cols.forEach(function (c) {
        var v = c.text(r);
        tr.appendChild(el("td", { "class": cellClass(c) }, v));
      });
      return { row: r, index: index, trs: trs };
    });
    groups.forEach(function (g) { g.trs.forEach(function (tr) { tbody.appendChild(tr); }); });
    t.appendChild(tbody);
    return t;
  }

  /*
   * The trend's chart: one bar per step between consecutive snapshots. With
   * the per-step byte changes ("steps") a bar's height is its step's change
   * against the row's largest, red and up from the baseline for growth,
   * blue and down for shrinkage, a thin grey mark for none; the baseline
   * sits where there is room for the directions the row took. Without them
   * (more than 64 steps) a full red bar marks a step it grew in.
   */
  var TREND_H = 16; /* px: the chart's height when the row went one way; 9 each way when both */
  function trendCell(r) {
    var m = data.intervals, n = r.grew_in || 0;
    var steps = Array.isArray(r.steps) && r.steps.length === m ? r.steps : null;
    var grew = Array.isArray(r.grew) ? r.grew : null;
    var slot = m <= 12 ? 9 : m <= 24 ? 5 : 3, w = slot > 3 ? slot - 2 : slot - 1;
    var big = 0, up = false, down = false;
    (steps || []).forEach(function (d) { big = Math.max(big, Math.abs(d)); up = up || d > 0; down = down || d < 0; });
    /* One side only: the whole height; both: half each, and the baseline between. */
    var side = up && down ? 9 : TREND_H;
    var base = up || !steps ? side : 0; /* y of the baseline: bars above it grew, below it shrank */
    var height = Math.max(1, base + (down ? side : 0));
    var label = steps
      ? "change per step: " + steps.map(signedBytes).join(", ")
      : "grew in " + n + " of " + m + " steps";
    var chart = el("span", { "class": "trend", role: "img", "aria-label": label, title: label,
                             style: "width:" + (m * slot - (slot - w)) + "px;height:" + height + "px" });
    for (var i = 0; i < m; i++) {
      var cls, h, top;
      if (steps) {
        var d = steps[i];
        /* Never thinner than 2 px, so that a small change still shows beside no change. */
        h = d === 0 ? 1 : Math.max(2, Math.round(Math.abs(d) / big * side));
        cls = d > 0 ? "up" : d < 0 ? "down" : "flat";
        top = d < 0 || (d === 0 && !up) ? base : base - h;
      } else {
        var g = grew ? grew[i] : i < n;
        cls = g ? "up" : "flat";
        h = g ? side : 3;
        top = base - h;
      }
      chart.appendChild(el("span", { "class": cls, "data-step": steps ? String(steps[i]) : null,
                                     title: "step " + (i + 1) + (steps ? ": " + signedBytes(steps[i]) : ""),
                                     style: "left:" + i * slot + "px;width:" + w + "px;top:" + top + "px;height:" + h + "px" }));
    }
    return el("span", null, chart, el("span", { "class": "trend-text", text: " grew in " + n + " of " + m }));
  }

  function rowCols(name, nameText) {
    var cols = [{ title: name, value: function (r) { return nameText(r).toLowerCase(); }, text: function (r) { return [nameText(r), " ", badge(r.state)]; } }];
    if (show) {
      cols.push({ title: "Bytes", num: true, value: function (r) { return r.bytes; }, text: function (r) { return bytes(r.bytes); } });
      cols.push({ title: "Count", num: true, value: function (r) { return r.count; }, text: function (r) { return count(r.count); } });
      return cols;
    }
    cols.push({ title: "Δ bytes", num: true, value: function (r) { return r.bytes_delta; }, text: function (r) { return signedBytes(r.bytes_delta); } });
    cols.push({ title: "Δ count", num: true, value: function (r) { return r.count_delta; }, text: function (r) { return signedCount(r.count_delta); } });
    cols.push({ title: "Before", num: true, value: function (r) { return r.bytes_before; }, text: function (r) { return bytes(r.bytes_before); } });
    cols.push({ title: "After", num: true, value: function (r) { return r.bytes_after; }, text: function (r) { return bytes(r.bytes_after); } });
    if (data.intervals > 1)
      cols.push({ title: "Trend", num: true, cls: "trend-col", value: function (r) { return r.grew_in || 0; }, text: trendCell });
    return cols;
  }

  function siteRow(s, span) {
    var amount = show ? bytes(s.bytes) + ", " + count(s.count) : signedBytes(s.bytes_delta) + ", " + signedCount(s.count_delta);
    return el("tr", null, el("td"), el("td", { colspan: String(span) }, siteText(s) + " — " + amount + (s.match && s.match !== "exact" ? " (matched by " + s.match + ")" : "")));
  }

  function tables() {
    var out = el("div");
    var span;
    if (data.types && data.types.length) {
      var tc = rowCols("Type", function (r) { return r.name; });
      span = tc.length;
      out.appendChild(el("section", { id: "types", "aria-label": "Types" }, el("h2", { text: show ? "Types" : "Growth by type" }),
        table("types-table", (show ? "Live objects by type" : "Types whose instances changed") + "; expand a row for its allocation sites",
          data.types, tc, function (r) { return (r.sites || []).map(function (s) { return siteRow(s, span); }); })));
    }
    if (data.sites && data.sites.length) {
      var sc = rowCols("Allocation site", siteText);
      if (!show) sc.splice(1, 0, { title: "Match", cls: "match", value: function (r) { return r.match || r.state; }, text: function (r) { return r.match || r.state; } });
      var span2 = sc.length;
      out.appendChild(el("section", { id: "sites", "aria-label": "Sites" }, el("h2", { text: show ? "Allocation sites" : "Growth by allocation site" }),
        table("sites-table", "Tracebacks; expand a row for the whole traceback", data.sites, sc, function (r) {
          return r.frames.slice(1).map(function (f) {
            return el("tr", null, el("td"), el("td", { colspan: String(span2), "class": "frame" },
              frameText(f), f.text ? el("code", { text: "  " + f.text }) : null));
          });
        })));
    }
    if (data.hints && data.hints.length) {
      out.appendChild(el("section", { id: "hints", "aria-label": "Leak hints" }, el("h2", { text: "Leak hints" }),
        el("ul", { "class": "hints" }, data.hints.map(function (h) {
          var what = [h.kind, h.name, h.type].filter(Boolean).join(" ");
          var li = el("li", null, el("strong", { text: what }), " ", badge(h.state));
          if (h.before !== undefined) li.appendChild(document.createTextNode(": " + count(h.before) + " → " + count(h.after) + " (" + signedCount(h.delta) + ")"));
          else if (h.value !== undefined) li.appendChild(document.createTextNode(": " + count(h.value)));
          if (h.path) li.appendChild(el("div", { "class": "path" }, "retained by ", el("code", { text: h.path.slice().reverse().join(" ← ") })));
          if (h.fix) li.appendChild(el("div", { "class": "fix", text: "Fix: " + h.fix }));
          return li;
        }))));
    }
    return out;
  }

  document.title = (show ? "leakdiff show " : "leakdiff diff ") +
    (show ? (data.snapshot && data.snapshot.path) || "" : ((data.before && data.before.path) || "") + " → " + ((data.after && data.after.path) || ""));
  app.appendChild(header());
  flameSection();
  app.appendChild(tables());
  document.documentElement.setAttribute("data-ready", "1");
})();
