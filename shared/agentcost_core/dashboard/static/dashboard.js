/* agentcost dashboard: hand-written, no framework, nothing fetched (except data.json from its own server
   when served live). Money is exact: costs are BigInt counts of 10^-scale dollars. */
(function () {
  "use strict";

  var NONE = "\ue000none";  // the select value of a missing attribution (null); a private-use character
  var ALL = "\ue000all";  // the select value of "no filter"
  var LEVELS = [["feature", "feature"], ["agent_id", "agent"], ["session_id", "session"]];
  var COLORS = ["#1849a9", "#e04f16", "#099250", "#7a2e0e", "#9e77ed", "#c11574", "#0e9384", "#ca8504",
    "#475467"];
  var doc, calls, notices, scale;
  var state = { window: "all", since: null, until: null, user_id: ALL, feature: ALL, model: ALL, bin: null,
    stack: "feature", path: [], call: null };

  function $(id) { return document.getElementById(id); }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c];
    });
  }

  function label(value) { return value === null || value === undefined ? "\u2014" : String(value); }

  // ---- the document -------------------------------------------------------------------------
  function load(d) {
    doc = d;
    scale = d.scale;
    var S = d.strings, cols = d.calls, F = d.flags, names = Object.keys(cols), strung = {};
    d.string_fields.forEach(function (f) { strung[f] = true; });
    calls = new Array(d.count);
    for (var i = 0; i < d.count; i++) {
      var c = { n: i };
      for (var j = 0; j < names.length; j++) {
        var v = cols[names[j]][i];
        c[names[j]] = strung[names[j]] ? S[v] : v;
      }
      c.units = c.cost === null ? 0n : BigInt(c.cost);
      c.unpriced = (c.flags & F.unpriced) !== 0;
      c.estimated = (c.flags & F.estimated) !== 0;
      c.failed = (c.flags & F.error) !== 0;
      c.cache_hit = (c.flags & F.cache_hit) !== 0;
      c.tokens = c.input + c.cache_read + c.cache_write_5m + c.cache_write_1h + c.output;
      calls[i] = c;
    }
    notices = d.notices;
  }

  // ---- numbers ---------------------------------------------------------------------------------
  function money(units) {  // every digit, at least cents, like `agentcost report`
    var neg = units < 0n;
    var s = (neg ? -units : units).toString();
    while (s.length <= scale) s = "0" + s;
    var ip = s.slice(0, s.length - scale), fp = s.slice(s.length - scale).replace(/0+$/, "");
    while (fp.length < 2) fp += "0";
    return "$" + (neg ? "-" : "") + ip.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + fp;
  }

  function count(n) { return Number(n).toLocaleString("en-US"); }

  function dollars(units) { return Number(units) / Math.pow(10, scale); }

  function sum(list) {
    var a = { calls: list.length, units: 0n, tokens: 0, input: 0, cache_read: 0, cache_write_5m: 0,
      cache_write_1h: 0, output: 0, reasoning: 0, unpriced: 0, estimated: 0, failed: 0, cache_hits: 0,
      sessions: 0 };
    var sessions = {};
    for (var i = 0; i < list.length; i++) {
      var c = list[i];
      a.units += c.units;
      a.tokens += c.tokens;
      a.input += c.input; a.cache_read += c.cache_read; a.cache_write_5m += c.cache_write_5m;
      a.cache_write_1h += c.cache_write_1h; a.output += c.output; a.reasoning += c.reasoning;
      if (c.unpriced) a.unpriced++;
      if (c.estimated) a.estimated++;
      if (c.failed) a.failed++;
      if (c.cache_hit) a.cache_hits++;
      if (c.session_id !== null && !sessions[c.session_id]) { sessions[c.session_id] = 1; a.sessions++; }
    }
    return a;
  }

  function byCost(a, b) {
    if (a.agg.units !== b.agg.units) return a.agg.units > b.agg.units ? -1 : 1;
    if (a.agg.calls !== b.agg.calls) return b.agg.calls - a.agg.calls;
    return label(a.key) < label(b.key) ? -1 : 1;
  }

  function groups(list, field) {
    var map = new Map();
    list.forEach(function (c) {
      var k = c[field];
      if (!map.has(k)) map.set(k, []);
      map.get(k).push(c);
    });
    var out = [];
    map.forEach(function (items, key) { out.push({ key: key, items: items, agg: sum(items) }); });
    return out.sort(byCost);
  }

  // ---- filters -----------------------------------------------------------------------------------
  function window_() {
    if (state.window === "custom") return [state.since, state.until];
    if (state.window === "all") return [null, null];
    return [doc.generated_at - Number(state.window), null];
  }

  function matches(item, withModel) {
    var w = window_();
    if (w[0] !== null && item.ts < w[0]) return false;
    if (w[1] !== null && item.ts >= w[1]) return false;
    var fields = withModel ? ["user_id", "feature", "model"] : ["user_id", "feature"];
    for (var i = 0; i < fields.length; i++) {
      var want = state[fields[i]];
      if (want === ALL) continue;
      var have = item[fields[i]];
      if (want === NONE ? have !== null : have !== want) return false;
    }
    return true;
  }

  function filtered() { return calls.filter(function (c) { return matches(c, true); }); }

  function shownNotices() {
    return notices.filter(function (n) { return matches(n, false); });  // a notice names no model
  }

  function fillSelect(field) {
    var el = $("f-" + field), seen = new Map();
    calls.forEach(function (c) { seen.set(c[field], (seen.get(c[field]) || 0) + 1); });
    var keys = Array.from(seen.keys()).sort(function (a, b) { return label(a) < label(b) ? -1 : 1; });
    var html = "<option value=\"" + esc(ALL) + "\">all</option>";
    keys.forEach(function (k) {
      var v = k === null ? NONE : k;
      html += "<option value=\"" + esc(v) + "\">" + esc(k === null ? "(none)" : k) + "</option>";
    });
    el.innerHTML = html;
    el.value = state[field];
    if (el.value !== state[field]) { state[field] = ALL; el.value = ALL; }
  }

  function utcInput(ts) { return ts === null ? "" : new Date(ts * 1000).toISOString().slice(0, 16); }

  function readUtcInput(el) {
    if (!el.value) return null;
    var t = Date.parse(el.value + "Z");
    return isNaN(t) ? null : t / 1000;
  }

  function bindFilters() {
    ["user_id", "feature", "model"].forEach(function (f) {
      $("f-" + f).addEventListener("change", function (e) {
        state[f] = e.target.value; state.call = null; render();
      });
    });
    $("f-window").addEventListener("change", function (e) { state.window = e.target.value; state.call = null; render(); });
    ["since", "until"].forEach(function (f) {
      $("f-" + f).addEventListener("change", function (e) {
        state.window = "custom"; $("f-window").value = "custom";
        state[f] = readUtcInput(e.target); state.call = null; render();
      });
    });
    $("f-reset").addEventListener("click", function () {
      state.window = "all"; state.since = state.until = null;
      state.user_id = state.feature = state.model = ALL; state.path = []; state.call = null;
      $("f-window").value = "all"; $("f-since").value = ""; $("f-until").value = "";
      ["user_id", "feature", "model"].forEach(function (f) { $("f-" + f).value = ALL; });
      render();
    });
    $("chart-bin").addEventListener("change", function (e) { state.bin = e.target.value; renderChart(filtered()); });
    $("chart-stack").addEventListener("change", function (e) { state.stack = e.target.value; renderChart(filtered()); });
    $("crumbs").addEventListener("click", function (e) {
      var a = e.target.closest("a[data-depth]");
      if (!a) return;
      state.path = state.path.slice(0, Number(a.dataset.depth)); state.call = null; render();
    });
    $("drill").addEventListener("click", function (e) {
      var tr = e.target.closest("tr.row");
      if (!tr) return;
      if (tr.dataset.call !== undefined) { state.call = Number(tr.dataset.call); renderCall(); return; }
      state.path.push(tr.dataset.key === NONE ? null : tr.dataset.key); state.call = null; render();
    });
    $("refresh").addEventListener("click", function () {
      fetch("data.json", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (d) {
        load(d); fillSelects(); render();
      });
    });
  }

  function fillSelects() { ["user_id", "feature", "model"].forEach(fillSelect); }

  // ---- markers: which budget events and anomalies touch a group -------------------------------------
  function markers(path, field, key) {
    var scope = path.concat([key]), fields = LEVELS.slice(0, scope.length).map(function (l) { return l[0]; });
    var budget = 0, anomaly = 0;
    shownNotices().forEach(function (n) {
      for (var i = 0; i < fields.length; i++) if (n[fields[i]] !== scope[i]) return;
      if (n.kind.indexOf("budget.") === 0) budget++;
      else if (n.kind.indexOf("anomaly.") === 0) anomaly++;
    });
    return (budget ? "<span class=\"badge budget\" title=\"budget events\">budget \u00d7" + budget + "</span>" : "") +
      (anomaly ? "<span class=\"badge anomaly\" title=\"spend anomalies\">anomaly \u00d7" + anomaly + "</span>" : "");
  }

  function flagBadges(a) {
    return (a.unpriced ? "<span class=\"badge unpriced\" title=\"cost unknown, not $0\">unpriced " + count(a.unpriced) + "</span>" : "") +
      (a.estimated ? "<span class=\"badge estimated\" title=\"tokens counted by agentcost: the provider reported none\">estimated " + count(a.estimated) + "</span>" : "") +
      (a.failed ? "<span class=\"badge error\">failed " + count(a.failed) + "</span>" : "");
  }

  // ---- totals ------------------------------------------------------------------------------------
  function renderTotals(list) {
    var a = sum(list), shown = shownNotices();
    var budgetEvents = shown.filter(function (n) { return n.kind.indexOf("budget.") === 0; }).length;
    var anomalies = shown.filter(function (n) { return n.kind.indexOf("anomaly.") === 0; }).length;
    var cards = [["total-cost", "spend" + (a.unpriced ? " (priced calls)" : ""), money(a.units)],
      ["total-calls", "calls", count(a.calls)], ["total-tokens", "tokens", count(a.tokens)],
      ["total-sessions", "sessions", count(a.sessions)], ["total-unpriced", "unpriced calls", count(a.unpriced)],
      ["total-estimated", "estimated calls", count(a.estimated)], ["total-failed", "failed calls", count(a.failed)],
      ["total-budget-events", "budget events", count(budgetEvents)], ["total-anomalies", "anomalies", count(anomalies)]];
    $("totals").innerHTML = cards.map(function (c) {
      return "<div class=\"card\"><div class=\"v\" id=\"" + c[0] + "\">" + esc(c[2]) + "</div><div class=\"k\">" +
        esc(c[1]) + "</div></div>";
    }).join("");
  }

  // ---- the chart -----------------------------------------------------------------------------------
  function renderChart(list) {
    var box = $("chart"), legend = $("legend");
    if (!list.length) { box.innerHTML = "<p class=\"empty\">no calls in this window</p>"; legend.innerHTML = ""; return; }
    var lo = Infinity, hi = -Infinity;
    list.forEach(function (c) { if (c.ts < lo) lo = c.ts; if (c.ts > hi) hi = c.ts; });
    if (!state.bin) state.bin = hi - lo <= 3 * 86400 ? "hour" : "day";
    $("chart-bin").value = state.bin;
    var step = state.bin === "hour" ? 3600 : 86400;
    var first = Math.floor(lo / step) * step, n = Math.floor(hi / step) - Math.floor(lo / step) + 1;
    if (n > 2000) { state.bin = "day"; step = 86400; $("chart-bin").value = "day";
      first = Math.floor(lo / step) * step; n = Math.floor(hi / step) - Math.floor(lo / step) + 1; }
    var series = groups(list, state.stack), top = series.slice(0, COLORS.length - 1);
    var color = new Map();
    top.forEach(function (s, i) { color.set(s.key, i); });
    var other = series.length > top.length;
    var bins = [];
    for (var b = 0; b < n; b++) bins.push(new Array(top.length + 1).fill(0n));
    list.forEach(function (c) {
      var i = Math.floor((c.ts - first) / step), k = color.has(c[state.stack]) ? color.get(c[state.stack]) : top.length;
      bins[i][k] += c.units;
    });
    var totals = bins.map(function (parts) { return parts.reduce(function (x, y) { return x + y; }, 0n); });
    var max = totals.reduce(function (x, y) { return x > y ? x : y; }, 0n);
    var W = 900, H = 240, L = 70, R = 10, T = 18, B = 28, plotW = W - L - R, plotH = H - T - B;
    var bw = plotW / n, maxD = dollars(max) || 1;
    var svg = ["<svg viewBox=\"0 0 " + W + " " + H + "\" role=\"img\" aria-label=\"spend per " + state.bin + "\">"];
    for (var g = 0; g <= 4; g++) {
      var y = T + plotH - plotH * g / 4;
      svg.push("<line class=\"axis\" x1=\"" + L + "\" x2=\"" + (W - R) + "\" y1=\"" + y + "\" y2=\"" + y + "\"/>");
      svg.push("<text x=\"" + (L - 4) + "\" y=\"" + (y + 3) + "\" text-anchor=\"end\">$" + (maxD * g / 4).toFixed(maxD < 1 ? 4 : 2) + "</text>");
    }
    var every = Math.max(1, Math.ceil(n / 8));
    bins.forEach(function (parts, i) {
      var x = L + i * bw, yTop = T + plotH, start = first + i * step;
      parts.forEach(function (u, k) {
        if (u === 0n) return;
        var h = plotH * dollars(u) / maxD;
        yTop -= h;
        var name = k < top.length ? label(top[k].key) : "other";
        svg.push("<rect class=\"seg\" data-bin=\"" + start + "\" data-key=\"" + esc(name) + "\" data-cost=\"" + money(u) + "\" x=\"" + (x + bw * 0.1).toFixed(2) +
          "\" y=\"" + yTop.toFixed(2) + "\" width=\"" + Math.max(bw * 0.8, 0.5).toFixed(2) + "\" height=\"" + Math.max(h, 0.5).toFixed(2) +
          "\" fill=\"" + COLORS[k < top.length ? k : COLORS.length - 1] + "\"><title>" + esc(binLabel(start) + " \u00b7 " + name + " \u00b7 " + money(u)) + "</title></rect>");
      });
      if (i % every === 0) {
        svg.push("<text x=\"" + (x + bw / 2).toFixed(2) + "\" y=\"" + (H - 10) + "\" text-anchor=\"middle\">" + esc(binLabel(start)) + "</text>");
      }
    });
    shownNotices().forEach(function (m) {  // budget events and anomalies on the time axis
      var isBudget = m.kind.indexOf("budget.") === 0, isAnomaly = m.kind.indexOf("anomaly.") === 0;
      if (!isBudget && !isAnomaly || m.ts < first || m.ts >= first + n * step) return;
      var x = L + ((m.ts - first) / step) * bw, tip = esc(m.kind + " " + label(m.subject) + ": " + m.message);
      svg.push(isBudget
        ? "<path class=\"marker-budget\" d=\"M" + x.toFixed(2) + " " + (T - 2) + " l-5 -9 h10 z\" fill=\"#b54708\"><title>" + tip + "</title></path>"
        : "<circle class=\"marker-anomaly\" cx=\"" + x.toFixed(2) + "\" cy=\"" + (T - 8) + "\" r=\"5\" fill=\"#b42318\"><title>" + tip + "</title></circle>");
    });
    svg.push("</svg>");
    box.innerHTML = svg.join("");
    legend.innerHTML = top.map(function (s, i) {
      return "<span><i style=\"background:" + COLORS[i] + "\"></i>" + esc(label(s.key)) + " " + money(s.agg.units) + "</span>";
    }).join("") + (other ? "<span><i style=\"background:" + COLORS[COLORS.length - 1] + "\"></i>other</span>" : "") +
      "<span style=\"color:#b54708\">\u25bc budget event</span><span style=\"color:#b42318\">\u25cf anomaly</span>";
  }

  function binLabel(ts) {
    var iso = new Date(ts * 1000).toISOString();
    return state.bin === "hour" ? iso.slice(5, 10) + " " + iso.slice(11, 13) + ":00" : iso.slice(0, 10);
  }

  // ---- drill-down: total -> feature -> agent -> session -> call ------------------------------------
  function renderCrumbs() {
    var parts = ["<a data-depth=\"0\">total</a>"];
    state.path.forEach(function (v, i) {
      parts.push(LEVELS[i][1] + " <a data-depth=\"" + (i + 1) + "\">" + esc(label(v)) + "</a>");
    });
    $("crumbs").innerHTML = parts.join(" \u203a ");
  }

  function underPath(list) {
    return list.filter(function (c) {
      for (var i = 0; i < state.path.length; i++) if (c[LEVELS[i][0]] !== state.path[i]) return false;
      return true;
    });
  }

  function aggCells(a) {
    return "<td class=\"num\">" + count(a.calls) + "</td><td class=\"num cost\">" + money(a.units) + "</td><td class=\"num\">" +
      count(a.tokens) + "</td>";
  }

  function renderDrill(list) {
    renderCrumbs();
    var here = underPath(list), depth = state.path.length, total = sum(here);
    if (depth >= LEVELS.length) return renderCalls(here, total);
    var field = LEVELS[depth][0], name = LEVELS[depth][1];
    var rows = groups(here, field).map(function (g) {
      var key = g.key === null ? NONE : g.key;
      return "<tr class=\"row\" data-level=\"" + name + "\" data-key=\"" + esc(key) + "\"><td>" + esc(label(g.key)) +
        flagBadges(g.agg) + markers(state.path, field, g.key) + "</td>" + aggCells(g.agg) + "</tr>";
    });
    $("drill").innerHTML = "<table><thead><tr><th>" + name + "</th><th class=\"num\">calls</th><th class=\"num\">cost</th>" +
      "<th class=\"num\">tokens</th></tr></thead><tbody>" + (rows.join("") || "<tr><td class=\"empty\" colspan=\"4\">no calls</td></tr>") +
      "</tbody><tfoot><tr class=\"total\" id=\"drill-total\"><td>" + (depth ? "this " + LEVELS[depth - 1][1] : "total") +
      flagBadges(total) + "</td>" + aggCells(total) + "</tr></tfoot></table>";
    renderCall();
  }

  function renderCalls(here, total) {
    here = here.slice().sort(function (a, b) { return a.ts - b.ts; });
    var rows = here.map(function (c) {
      var badges = (c.unpriced ? "<span class=\"badge unpriced\">unpriced</span>" : "") +
        (c.estimated ? "<span class=\"badge estimated\">estimated</span>" : "") +
        (c.failed ? "<span class=\"badge error\">failed</span>" : "") + (c.cache_hit ? "<span class=\"badge cache\">cache hit</span>" : "");
      return "<tr class=\"row\" data-level=\"call\" data-call=\"" + c.n + "\" data-id=\"" + esc(c.id) + "\"><td>" +
        esc(new Date(c.ts * 1000).toISOString().replace("T", " ").slice(0, 19)) + "</td><td>" + esc(label(c.model)) +
        badges + "</td><td>" + esc(label(c.step)) + "</td><td>" + esc(label(c.tier)) + "</td><td class=\"num cost\">" +
        (c.unpriced ? "unpriced" : money(c.units)) + "</td><td class=\"num\">" + count(c.tokens) + "</td></tr>";
    });
    $("drill").innerHTML = "<table><thead><tr><th>time (UTC)</th><th>model</th><th>step</th><th>tier</th>" +
      "<th class=\"num\">cost</th><th class=\"num\">tokens</th></tr></thead><tbody>" + rows.join("") +
      "</tbody><tfoot><tr class=\"total\" id=\"drill-total\"><td colspan=\"4\">this session: " + count(total.calls) +
      " calls" + flagBadges(total) + "</td><td class=\"num cost\">" + money(total.units) + "</td><td class=\"num\">" +
      count(total.tokens) + "</td></tr></tfoot></table>";
    renderCall();
  }

  function renderCall() {
    var box = $("call-detail");
    var c = state.call === null ? null : calls[state.call];
    if (!c) { box.hidden = true; box.innerHTML = ""; return; }
    var item = function (field, name, value) {
      return "<dt>" + esc(name) + "</dt><dd data-field=\"" + field + "\">" + esc(value) + "</dd>";
    };
    var flags = [c.unpriced && "unpriced (cost unknown, not $0)", c.estimated && "estimated tokens (the provider reported none)",
      c.failed && "failed", c.cache_hit && "cache hit"].filter(Boolean).join("; ");
    box.innerHTML = "<h3>Call " + esc(c.id) + "</h3><dl>" +
      item("time", "time (UTC)", new Date(c.ts * 1000).toISOString()) +
      item("model", "model", label(c.model)) + item("provider", "provider", label(c.provider)) +
      item("kind", "kind", c.kind) +
      item("cost", "cost", c.unpriced ? "unpriced" : money(c.units)) +
      item("input", "input tokens", count(c.input)) + item("cache_read", "cache read tokens", count(c.cache_read)) +
      item("cache_write_5m", "cache write 5m tokens", count(c.cache_write_5m)) +
      item("cache_write_1h", "cache write 1h tokens", count(c.cache_write_1h)) +
      item("output", "output tokens", count(c.output)) + item("reasoning", "of which reasoning", count(c.reasoning)) +
      item("latency", "latency", c.latency_s === null ? "\u2014" : c.latency_s.toFixed(3) + " s") +
      item("step", "step", label(c.step)) + item("tier", "tier", label(c.tier)) +
      item("service_tier", "service tier", label(c.service_tier)) +
      item("route_reason", "route reason", label(c.route_reason)) + item("trace_id", "trace id", label(c.trace_id)) +
      item("user_id", "user", label(c.user_id)) + item("feature", "feature", label(c.feature)) +
      item("agent_id", "agent", label(c.agent_id)) + item("session_id", "session", label(c.session_id)) +
      item("flags", "marked", flags || "\u2014") + (c.error ? item("error", "error", c.error) : "") + "</dl>";
    box.hidden = false;
  }

  // ---- budget status and notices ----------------------------------------------------------------------
  function renderBudgets() {
    var list = doc.budgets;
    if (!list.length) { $("budgets").innerHTML = "<p class=\"empty\">no budget events in the ledger</p>"; return; }
    $("budgets").innerHTML = "<table><thead><tr><th>budget</th><th>scope</th><th>status</th><th>used / limit</th>" +
      "<th></th><th>action</th><th>last event (UTC)</th></tr></thead><tbody>" + list.map(function (b) {
        var f = Math.min(Number(b.fraction || 0), 1), cls = b.level === "warning" ? "warm" : "hot";
        var used = b.dimension === "usd" ? "$" + b.used + " / $" + b.limit : b.used + " / " + b.limit + " " + label(b.dimension);
        return "<tr class=\"budget-row\" data-budget=\"" + esc(b.budget) + "\"><td>" + esc(b.budget) + "</td><td>" +
          esc(label(b.per) + " " + label(b.key)) + "</td><td class=\"level-" + esc(b.level) + "\">" + esc(b.level) +
          "</td><td>" + esc(used) + "</td><td><span class=\"meter\"><b class=\"" + cls + "\" style=\"width:" + (f * 100).toFixed(1) +
          "%\"></b></span> " + (Number(b.fraction || 0) * 100).toFixed(0) + "%</td><td>" + esc(label(b.action)) + "</td><td>" +
          esc(new Date(b.ts * 1000).toISOString().replace("T", " ").slice(0, 19)) + "</td></tr>";
      }).join("") + "</tbody></table>";
  }

  function renderNotices() {
    var list = shownNotices().slice().sort(function (a, b) { return b.ts - a.ts; });
    if (!list.length) { $("notices").innerHTML = "<p class=\"empty\">none in this window</p>"; return; }
    var shown = list.slice(0, 200);
    $("notices").innerHTML = "<table><thead><tr><th>time (UTC)</th><th>event</th><th>about</th><th>feature / agent / session</th>" +
      "<th>message</th></tr></thead><tbody>" + shown.map(function (n) {
        var cls = n.kind.indexOf("anomaly.") === 0 ? "anomaly" : n.kind.indexOf("budget.") === 0 ? "budget" : "error";
        return "<tr class=\"notice-row\" data-kind=\"" + esc(n.kind) + "\"><td>" + esc(new Date(n.ts * 1000).toISOString().replace("T", " ").slice(0, 19)) +
          "</td><td><span class=\"badge " + cls + "\">" + esc(n.kind) + "</span></td><td>" + esc(label(n.subject)) + "</td><td>" +
          esc([n.feature, n.agent_id, n.session_id].map(label).join(" / ")) + "</td><td>" + esc(n.message) + "</td></tr>";
      }).join("") + "</tbody></table>" + (list.length > shown.length ? "<p class=\"muted\">" + count(list.length - shown.length) + " older not shown</p>" : "");
  }

  // ---- everything --------------------------------------------------------------------------------------
  function render() {
    var list = filtered();
    $("f-since").value = utcInput(window_()[0]);
    $("f-until").value = utcInput(window_()[1]);
    renderTotals(list);
    renderChart(list);
    renderDrill(list);
    renderBudgets();
    renderNotices();
    document.body.dataset.ready = "1";
  }

  function start() {
    load(JSON.parse($("agentcost-data").textContent));
    $("source").textContent = "ledger " + doc.ledger + " \u00b7 read " + new Date(doc.generated_at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    $("refresh").hidden = !doc.live;
    fillSelects();
    bindFilters();
    render();
  }

  start();
})();
