/* langgraph-stl view (payload version 1). Handwritten, dependency-free; renders the JSON in #stl-data.
 * Sections appear only when the payload has them: runs (task table + task detail with tree), compare,
 * iterations (stl improve), dataset (collection), plots (stl report). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("stl-data").textContent);
  var app = document.getElementById("app");
  var BIG_TREE = 150; // larger trees start collapsed except along the chosen trajectory

  // ---------------------------------------------------------------------------------------------- helpers
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(x, d) { return x == null ? "–" : Number(x).toFixed(d == null ? 3 : d); }
  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (html != null) e.innerHTML = html;
    return e;
  }
  function colour(v) {
    if (v == null) return "#d0d7de";
    if (v < 0) return "#57606a"; // -1: rule-based or unparseable
    var x = Math.max(0, Math.min(1, v));
    return "hsl(" + Math.round(x * 120) + ",70%," + (x > 0.5 ? 38 : 48) + "%)";
  }
  function section(title, id) {
    var s = el("section", { id: id });
    s.appendChild(el("h2", {}, esc(title)));
    app.appendChild(s);
    return s;
  }

  // ---------------------------------------------------------------------------------------------- header
  app.appendChild(el("h1", {}, esc(D.title)));
  if (D.sources && D.sources.length) app.appendChild(el("div", { "class": "sources" }, esc(D.sources.join(" · "))));

  // ---------------------------------------------------------------------------------------------- task table
  var COLS = [
    ["task_id", "task", "str"], ["reward", "reward (value-selected)", "num"], ["pass_at_n", "pass@n", "num"],
    ["success", "success", "bool"], ["states", "states", "int"], ["tokens", "tokens", "int"],
    ["cost", "cost $", "cost"], ["wall_time_s", "wall s", "sec"], ["error", "error", "str"]
  ];
  function cell(row, col) {
    var v = row[col[0]];
    if (col[2] === "bool") return v ? "<span class='ok'>yes</span>" : "no";
    if (v == null) return "–";
    if (col[2] === "num") return num(v);
    if (col[2] === "cost") return num(v, 4);
    if (col[2] === "sec") return num(v, 1);
    if (col[0] === "error") return "<span class='bad'>" + esc(v) + "</span>";
    return esc(v);
  }

  var state = { run: 0, task: null, sortKey: null, sortDir: 1 };
  var tableBody, detail, runSelect, countEl;

  function taskTable(parent) {
    var bar = el("div", { "class": "toolbar" });
    if (D.runs.length > 1 && !D.compare) {
      runSelect = el("select", { "aria-label": "run" });
      D.runs.forEach(function (r, i) { runSelect.appendChild(el("option", { value: i }, esc(r.label))); });
      runSelect.onchange = function () { state.run = +runSelect.value; state.task = null; fillTable(); showTask(); };
      bar.appendChild(runSelect);
    }
    var filter = el("input", { type: "search", placeholder: "filter: task, action, error…", "aria-label": "filter" });
    var failures = el("input", { type: "checkbox", id: "only-failures" });
    var lab = el("label", { "for": "only-failures" }, " unsuccessful only");
    countEl = el("span", { "class": "muted" });
    bar.appendChild(filter); bar.appendChild(failures); bar.appendChild(lab); bar.appendChild(countEl);
    parent.appendChild(bar);
    var wrap = el("div", { "class": "tablewrap" });
    var table = el("table", { "class": "grid", id: "tasks" });
    var head = el("tr");
    COLS.forEach(function (c) {
      var th = el("th", { "data-key": c[0], scope: "col" }, esc(c[1]));
      th.onclick = function () {
        state.sortDir = state.sortKey === c[0] ? -state.sortDir : (c[2] === "str" ? 1 : -1);
        state.sortKey = c[0];
        fillTable();
      };
      head.appendChild(th);
    });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    tableBody = el("tbody"); table.appendChild(tableBody);
    wrap.appendChild(table); parent.appendChild(wrap);
    state.filter = filter; state.failures = failures;
    filter.oninput = fillTable; failures.onchange = fillTable;
    fillTable();
  }

  function fillTable() {
    var rows = D.runs[state.run].tasks.slice();
    var q = state.filter.value.trim().toLowerCase();
    if (q) rows = rows.filter(function (r) {
      return (r.task_id + " " + (r.error || "") + " " + r.trajectory.join(" ")).toLowerCase().indexOf(q) >= 0;
    });
    if (state.failures.checked) rows = rows.filter(function (r) { return !r.success; });
    if (state.sortKey) {
      var k = state.sortKey, dir = state.sortDir;
      rows.sort(function (a, b) {
        var x = a[k], y = b[k];
        if (x == null && y == null) return 0;
        if (x == null) return 1;
        if (y == null) return -1;
        if (typeof x === "string") return dir * x.localeCompare(y, undefined, { numeric: true });
        return dir * ((x > y) - (x < y));
      });
    }
    tableBody.parentNode.querySelectorAll("th").forEach(function (th) {
      th.setAttribute("aria-sort", th.getAttribute("data-key") === state.sortKey ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
    });
    var html = [];
    rows.forEach(function (r) {
      html.push("<tr data-task-id='" + esc(r.task_id) + "'" + (r.task_id === state.task ? " class='current'" : "") + ">" +
        COLS.map(function (c) { return "<td" + (c[2] !== "str" && c[2] !== "bool" ? " class='num'" : "") + ">" + cell(r, c) + "</td>"; }).join("") + "</tr>");
    });
    tableBody.innerHTML = html.join("");
    countEl.textContent = rows.length + " of " + D.runs[state.run].tasks.length + " tasks";
    tableBody.querySelectorAll("tr").forEach(function (tr) {
      tr.onclick = function () { state.task = tr.getAttribute("data-task-id"); fillTable(); showTask(); };
    });
  }

  function findTask(runIndex, id) {
    var tasks = D.runs[runIndex].tasks;
    for (var i = 0; i < tasks.length; i++) if (tasks[i].task_id === id) return tasks[i];
    return null;
  }

  // ---------------------------------------------------------------------------------------------- trajectories
  function trajectory(row, divergeStep) {
    if (!row.trajectory.length) return "<div class='muted'>no actions recorded (the search ended at the root, or the file keeps no trajectories)</div>";
    return "<ol class='traj'>" + row.trajectory.map(function (a, i) {
      var d = divergeStep === i + 1;
      return "<li" + (d ? " class='diverge' data-divergent-step='" + (i + 1) + "'" : "") + ">" +
        "<span class='chip' style='background:" + colour(row.values[i]) + "'></span> " + esc(a) +
        " <span class='val'>" + num(row.values[i], 2) + "</span></li>";
    }).join("") + "</ol>";
  }

  // ---------------------------------------------------------------------------------------------- tree
  function Tree(container, tree, detailBox) {
    this.tree = tree;
    this.detailBox = detailBox;
    var byId = {}, kids = {}, roots = [];
    tree.nodes.forEach(function (n) {
      byId[n.id] = n;
      if (n.parent == null) roots.push(n); else (kids[n.parent] = kids[n.parent] || []).push(n);
    });
    this.byId = byId;
    var chosen = {};
    for (var c = tree.chosen; c != null; c = byId[c].parent) chosen[c] = true;
    var leaves = {};
    (tree.leaves || []).forEach(function (l) { leaves[l] = true; });
    var collapse = tree.nodes.length > BIG_TREE;
    var out = [];
    function render(n) {
      var ch = kids[n.id] || [];
      var closed = collapse && ch.length && !chosen[n.id];
      var cls = "tn" + (chosen[n.id] ? " chosen" : "") + (closed ? " collapsed" : "");
      var badges = "";
      if (n.terminal) {
        var r = n.true_reward;
        badges += r == null ? "<span class='badge'>terminal</span>"
          : "<span class='badge " + (r >= 1 ? "win" : "lose") + "'>terminal · reward " + num(r, 2) + "</span>";
      }
      if (leaves[n.id] && !n.terminal) badges += "<span class='badge'>leaf</span>";
      if (n.visits > 1) badges += "<span class='badge'>" + n.visits + " visits</span>";
      if (ch.length) badges += "<span class='badge more'>" + ch.length + "</span>";
      out.push("<div class='" + cls + "' role='treeitem' tabindex='-1' data-node-id='" + esc(n.id) + "'" +
        (ch.length ? " aria-expanded='" + !closed + "'" : "") + "><div class='row' style='padding-left:" + (6 + 16 * n.depth) + "px'>" +
        "<span class='tog'>" + (ch.length ? (closed ? "▸" : "▾") : "·") + "</span>" +
        "<span class='chip' style='background:" + colour(n.value) + "'></span>" +
        "<span class='act'>" + (n.action == null ? "<i>root</i> " + esc(n.id) : esc(n.action)) + "</span>" +
        "<span class='val'>" + (n.value == null ? "" : num(n.value, 2)) + "</span>" + badges + "</div>");
      if (ch.length) { out.push("<div class='kids' role='group'>"); ch.forEach(render); out.push("</div>"); }
      out.push("</div>");
    }
    roots.forEach(render);
    var box = el("div", { "class": "tree", role: "tree", "aria-label": "search tree of task " + tree.task_id });
    box.innerHTML = out.join("");
    container.appendChild(box);
    this.box = box;
    var self = this;
    box.addEventListener("click", function (ev) {
      var item = ev.target.closest(".tn");
      if (!item) return;
      if (ev.target.classList.contains("tog")) self.toggle(item);
      self.select(item);
    });
    box.addEventListener("keydown", function (ev) { self.key(ev); });
    var first = tree.chosen ? box.querySelector("[data-node-id='" + cssEsc(tree.chosen) + "']") : box.querySelector(".tn");
    if (first) { first.setAttribute("tabindex", "0"); this.select(first, true); }
  }
  function cssEsc(s) { return String(s).replace(/['\\]/g, "\\$&"); }
  Tree.prototype.toggle = function (item, open) {
    if (!item.querySelector(":scope > .kids")) return;
    var closed = open == null ? !item.classList.contains("collapsed") : !open;
    item.classList.toggle("collapsed", closed);
    item.setAttribute("aria-expanded", String(!closed));
    item.querySelector(":scope > .row > .tog").textContent = closed ? "▸" : "▾";
  };
  Tree.prototype.setAll = function (open) {
    var self = this;
    this.box.querySelectorAll(".tn").forEach(function (t) { self.toggle(t, open); });
    if (this.current) this.reveal(this.current);
  };
  Tree.prototype.reveal = function (item) {
    for (var p = item.parentElement.closest(".tn"); p; p = p.parentElement.closest(".tn")) this.toggle(p, true);
  };
  // Visible neighbours from the DOM structure alone (no layout reads: a 5,000-node tree stays instant).
  function kidsOf(item) {
    var k = item.querySelector(":scope > .kids");
    return k && !item.classList.contains("collapsed") ? k.children : null;
  }
  Tree.prototype.below = function (item) {
    var k = kidsOf(item);
    if (k && k.length) return k[0];
    for (var p = item; p; p = p.parentElement.closest(".tn")) if (p.nextElementSibling) return p.nextElementSibling;
    return null;
  };
  Tree.prototype.above = function (item) {
    var prev = item.previousElementSibling;
    if (!prev) return item.parentElement.closest(".tn");
    for (var k = kidsOf(prev); k && k.length; k = kidsOf(prev)) prev = k[k.length - 1];
    return prev;
  };
  Tree.prototype.last = function () {
    var roots = this.box.children, item = roots[roots.length - 1];
    for (var k = kidsOf(item); k && k.length; k = kidsOf(item)) item = k[k.length - 1];
    return item;
  };
  Tree.prototype.key = function (ev) {
    var cur = this.current;
    if (!cur) return;
    var kids = cur.querySelector(":scope > .kids"), next = null;
    switch (ev.key) {
      case "ArrowDown": next = this.below(cur); break;
      case "ArrowUp": next = this.above(cur); break;
      case "Home": next = this.box.firstElementChild; break;
      case "End": next = this.last(); break;
      case "ArrowRight":
        if (kids && cur.classList.contains("collapsed")) this.toggle(cur, true);
        else if (kids) next = kids.querySelector(".tn");
        break;
      case "ArrowLeft":
        if (kids && !cur.classList.contains("collapsed")) this.toggle(cur, false);
        else next = cur.parentElement.closest(".tn");
        break;
      case "Enter": case " ":
        this.toggle(cur);
        break;
      case "c": // jump to the chosen leaf
        if (this.tree.chosen) next = this.box.querySelector("[data-node-id='" + cssEsc(this.tree.chosen) + "']");
        break;
      default: return;
    }
    ev.preventDefault();
    if (next) { this.reveal(next); this.select(next); }
  };
  Tree.prototype.select = function (item, quiet) {
    if (this.current) { this.current.classList.remove("sel"); this.current.setAttribute("tabindex", "-1"); }
    this.current = item;
    item.classList.add("sel");
    item.setAttribute("tabindex", "0");
    if (!quiet) item.focus({ preventScroll: true });
    var row = item.querySelector(":scope > .row"), box = this.box;
    if (row.offsetTop < box.scrollTop || row.offsetTop > box.scrollTop + box.clientHeight - 20) box.scrollTop = row.offsetTop - box.clientHeight / 3;
    this.show(this.byId[item.getAttribute("data-node-id")]);
  };
  Tree.prototype.show = function (n) {
    var samples = (n.value_samples || []).map(function (s) { return s == null ? "unparsed" : num(s, 2); }).join(", ");
    var mean = n.visits ? n.value_sum / n.visits : null;
    this.detailBox.setAttribute("data-selected", n.id);
    this.detailBox.innerHTML = "<h3>Node " + esc(n.id) + "</h3><dl>" +
      "<dt>action</dt><dd class='node-action'>" + (n.action == null ? "<i>root</i>" : esc(n.action)) + "</dd>" +
      "<dt>value</dt><dd class='node-value'><span class='chip' style='background:" + colour(n.value) + "'></span> " +
      (n.value == null ? "not valued" : num(n.value) + (n.value < 0 ? " (rule-based or unparseable)" : "")) + "</dd>" +
      "<dt>value samples</dt><dd class='node-samples'>" + (samples || "–") + "</dd>" +
      "<dt>depth</dt><dd>" + n.depth + "</dd>" +
      "<dt>visits</dt><dd>" + n.visits + (n.visits > 1 ? " (mean backed-up value " + num(mean) + ")" : "") + "</dd>" +
      "<dt>terminal</dt><dd>" + (n.terminal ? "yes" + (n.true_reward != null ? ", true reward " + num(n.true_reward) + " (computed after the search)" : "") : "no") + "</dd>" +
      "</dl><h3>Rationale</h3><pre class='node-rationale'>" + (esc(n.rationale) || "<i>none</i>") + "</pre>" +
      "<h3>Observation</h3><pre class='node-observation'>" + esc(n.observation) + "</pre>";
  };

  function treeBlock(parent, row, label) {
    var wrap = el("div");
    if (label) wrap.appendChild(el("h3", {}, esc(label)));
    if (!row.tree) {
      wrap.appendChild(el("div", { "class": "muted" }, "No tree saved for this task (run with <code>stl eval --save-trees</code> or <code>stl search --tree</code>)."));
      parent.appendChild(wrap);
      return null;
    }
    var bar = el("div", { "class": "toolbar" });
    var open = el("button", {}, "expand all"), close = el("button", {}, "collapse all");
    bar.appendChild(open); bar.appendChild(close);
    bar.appendChild(el("span", { "class": "legend" }, "<span>value</span><span>0</span><span class='grad'></span><span>1</span>" +
      "<span class='chip' style='background:#57606a'></span><span>−1</span><span class='chip' style='background:#d0d7de'></span><span>none</span>" +
      "<span><kbd>↑</kbd><kbd>↓</kbd><kbd>←</kbd><kbd>→</kbd> move · <kbd>Enter</kbd> fold · <kbd>c</kbd> chosen</span>"));
    bar.appendChild(el("span", { "class": "muted" }, row.tree.nodes.length + " nodes · " + esc(row.tree.algorithm)));
    wrap.appendChild(bar);
    var grid = el("div", { "class": "split" });
    var left = el("div"), right = el("div", { "class": "panel detail" });
    grid.appendChild(left); grid.appendChild(right); wrap.appendChild(grid);
    parent.appendChild(wrap);
    var t = new Tree(left, row.tree, right);
    open.onclick = function () { t.setAll(true); };
    close.onclick = function () { t.setAll(false); };
    return t;
  }

  // ---------------------------------------------------------------------------------------------- task detail
  function compareRow(id) {
    for (var i = 0; i < (D.compare || []).length; i++) if (D.compare[i].task_id === id) return D.compare[i];
    return null;
  }

  function showTask() {
    detail.innerHTML = "";
    if (state.task == null) { detail.appendChild(el("div", { "class": "muted" }, "Select a task in the table.")); return; }
    if (D.compare) {
      var cmp = compareRow(state.task);
      var a = findTask(0, state.task), b = findTask(1, state.task);
      if (!a || !b) {
        detail.appendChild(el("div", { "class": "muted" }, "Task " + esc(state.task) + " is only in " + esc(D.runs[a ? 0 : 1].label) + "."));
        return;
      }
      detail.appendChild(el("h3", {}, "Task " + esc(state.task) + (cmp && cmp.step ? ": trajectories diverge at step " + cmp.step : ": same trajectory")));
      var g = el("div", { "class": "split2" });
      [[a, D.runs[0].label], [b, D.runs[1].label]].forEach(function (p) {
        var col = el("div");
        col.appendChild(el("h3", {}, esc(p[1]) + " · reward " + num(p[0].reward, 2)));
        col.innerHTML += trajectory(p[0], cmp ? cmp.step : null);
        g.appendChild(col);
      });
      detail.appendChild(g);
      treeBlock(detail, a, D.runs[0].label + " tree");
      treeBlock(detail, b, D.runs[1].label + " tree");
      return;
    }
    var row = findTask(state.run, state.task);
    detail.appendChild(el("h3", {}, "Task " + esc(row.task_id) + " · chosen trajectory (reward " + num(row.reward, 2) + ")"));
    if (row.error) detail.appendChild(el("div", { "class": "bad" }, esc(row.error)));
    detail.appendChild(el("div", {}, trajectory(row, null)));
    treeBlock(detail, row, null);
  }

  // ---------------------------------------------------------------------------------------------- compare table
  function compareTable(parent) {
    var diverged = D.compare.filter(function (c) { return c.step != null; }).length;
    parent.appendChild(el("p", { "class": "muted" }, diverged + " of " + D.compare.length +
      " common tasks diverge. At the first differing step: each run's action and its own value, and the value its model gave the other run's action there (when its tree holds it)."));
    var la = esc(D.runs[0].label), lb = esc(D.runs[1].label);
    var html = ["<div class='tablewrap'><table class='grid' id='compare'><thead><tr><th>task</th><th>step</th><th>" + la +
      " action</th><th>value</th><th>its value of " + lb + "'s</th><th>" + lb + " action</th><th>value</th><th>its value of " + la +
      "'s</th><th>reward " + la + "</th><th>reward " + lb + "</th></tr></thead><tbody>"];
    D.compare.forEach(function (c) {
      html.push("<tr data-task-id='" + esc(c.task_id) + "' data-diverge-step='" + (c.step == null ? "" : c.step) + "'><td>" + esc(c.task_id) +
        "</td><td class='num'>" + (c.step == null ? "same" : c.step) + "</td><td>" + esc(c.a.action || "–") + "</td><td class='num'>" + num(c.a.value, 2) +
        "</td><td class='num'>" + num(c.a.other_value, 2) + "</td><td>" + esc(c.b.action || "–") + "</td><td class='num'>" + num(c.b.value, 2) +
        "</td><td class='num'>" + num(c.b.other_value, 2) + "</td><td class='num'>" + num(c.reward_a, 2) + "</td><td class='num'>" + num(c.reward_b, 2) + "</td></tr>");
    });
    html.push("</tbody></table></div>");
    parent.insertAdjacentHTML("beforeend", html.join(""));
    parent.querySelectorAll("#compare tbody tr").forEach(function (tr) {
      tr.onclick = function () { state.task = tr.getAttribute("data-task-id"); fillTable(); showTask(); detail.scrollIntoView(); };
    });
  }

  // ---------------------------------------------------------------------------------------------- charts
  function bars(title, entries) {
    if (!entries.length) return "";
    var w = 300, h = 110, max = Math.max.apply(null, entries.map(function (e) { return e[1]; }).concat([1]));
    var bw = (w - 20) / entries.length;
    var svg = "<svg class='chart' width='" + w + "' height='" + (h + 30) + "' role='img' aria-label='" + esc(title) + "'>";
    entries.forEach(function (e, i) {
      var bh = Math.round((h - 14) * e[1] / max), x = 10 + i * bw;
      svg += "<rect x='" + (x + 1) + "' y='" + (h - bh) + "' width='" + Math.max(1, bw - 2) + "' height='" + bh + "' fill='#54aeff'><title>" +
        esc(e[0]) + ": " + e[1] + "</title></rect><text x='" + (x + bw / 2) + "' y='" + (h - bh - 2) + "' text-anchor='middle'>" + e[1] +
        "</text><text x='" + (x + bw / 2) + "' y='" + (h + 12) + "' text-anchor='middle'>" + esc(e[0]) + "</text>";
    });
    return "<div><div class='muted'>" + esc(title) + "</div>" + svg + "</svg></div>";
  }
  function line(title, pts) {
    if (!pts.length) return "<div class='muted'>" + esc(title) + ": not recorded</div>";
    var w = 300, h = 110, xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    function X(x) { return 34 + (w - 44) * (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)); }
    function Y(y) { return 8 + (h - 20) * (y1 === y0 ? 0.5 : 1 - (y - y0) / (y1 - y0)); }
    var d = pts.map(function (p, i) { return (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1); }).join(" ");
    return "<div><div class='muted'>" + esc(title) + "</div><svg class='chart loss' width='" + w + "' height='" + (h + 14) + "' role='img' aria-label='" + esc(title) + "'>" +
      "<path d='" + d + "' fill='none' stroke='#0969da' stroke-width='1.6'/>" +
      pts.map(function (p) { return "<circle cx='" + X(p[0]).toFixed(1) + "' cy='" + Y(p[1]).toFixed(1) + "' r='2' fill='#0969da'><title>step " + p[0] + ": " + num(p[1], 4) + "</title></circle>"; }).join("") +
      "<text x='2' y='12'>" + num(y1, 3) + "</text><text x='2' y='" + (h - 10) + "'>" + num(y0, 3) + "</text>" +
      "<text x='34' y='" + (h + 10) + "'>step " + x0 + "</text><text x='" + (w - 10) + "' y='" + (h + 10) + "' text-anchor='end'>" + x1 + "</text></svg></div>";
  }
  function entries(obj) { return Object.keys(obj || {}).map(function (k) { return [k, obj[k]]; }); }

  function example(e) {
    var cands = (e.candidates || []).map(function (c) {
      return "<li><span class='chip' style='background:" + colour(c[1]) + "'></span> " + esc(c[0]) + " <span class='val'>" + num(c[1], 2) + "</span></li>";
    }).join("");
    return "<div class='example'><div class='muted'>" + esc(e.kind) + " · depth " + e.depth + (e.task ? " · task " + esc(e.task) : "") +
      " · value " + num(e.value, 2) + "</div><details><summary>prompt</summary><pre>" + esc(e.prompt) + "</pre></details>" +
      "<div class='arrow'>→ target</div><pre>" + esc(e.target) + "</pre>" +
      (cands ? "<details><summary>" + e.candidates.length + " candidates the lookahead compared</summary><ul class='cands'>" + cands + "</ul></details>" : "") + "</div>";
  }

  function stats(s) {
    return "<div class='muted'>" + s.total + " examples from " + s.tasks + " tasks" + (s.no_value ? ", " + s.no_value + " without value" : "") + "</div>" +
      bars("examples per depth", entries(s.per_depth)) + bars("target values (0–10)", entries(s.value_histogram));
  }

  // ---------------------------------------------------------------------------------------------- sections
  if (D.iterations) {
    var it = section("Iterations", "iterations");
    var cards = el("div", { "class": "cards" });
    D.iterations.forEach(function (k) {
      var m = k.metrics || {}, t = k.train, html = "<h3>V" + k.k + "</h3><div class='muted'>" + esc(k.value_model || "") + "</div>";
      if (k.metrics) html += "<dl class='kv'><div>" + esc(m.label || "evaluation") + ": success <b>" + num(m.success_rate, 3) +
        "</b>, mean reward " + num(m.mean_reward, 3) + ", pass@n " + num(m.pass_at_n, 3) + ", " + (m.errors || 0) + " errors</div></dl>";
      if (k.data) html += stats(k.data);
      if (t) html += line("training loss", t.loss_curve) + "<div class='muted'>" + (t.steps || 0) + " steps, eval loss " + num(t.eval_loss, 4) + "</div>";
      if (k.samples.length) html += "<details><summary>" + k.samples.length + " lookahead examples (prompt → target)</summary>" + k.samples.map(example).join("") + "</details>";
      cards.appendChild(el("div", { "class": "card", "data-iteration": k.k }, html));
    });
    it.appendChild(cards);
  }
  if (D.compare) compareTable(section("Where the runs diverge", "compare-section"));
  if (D.runs.length) {
    var tasks = section(D.compare ? "Tasks" : "Tasks (click a row)", "tasks-section");
    taskTable(tasks);
    detail = el("div", { id: "task-detail" });
    tasks.appendChild(detail);
    var only = D.runs[0].tasks.length === 1 && !D.compare;
    state.task = only ? D.runs[0].tasks[0].task_id : null;
    if (only) fillTable();
    showTask();
  }
  if (D.dataset) {
    var ds = section("Dataset", "dataset");
    ds.insertAdjacentHTML("beforeend", stats(D.dataset.stats) + (D.dataset.errors.length ? "<div class='bad'>" + D.dataset.errors.length +
      " malformed lines skipped, first: " + esc(D.dataset.errors[0]) + "</div>" : ""));
    ds.appendChild(el("h3", {}, "Examples (first " + D.dataset.examples.length + ")"));
    ds.insertAdjacentHTML("beforeend", D.dataset.examples.map(example).join(""));
  }
  if (D.plots && D.plots.length) {
    var pl = section("Plots (stl report)", "plots");
    pl.classList.add("plots");
    D.plots.forEach(function (p) { pl.appendChild(el("figure", {}, "<img alt='" + esc(p.title) + "' src='" + p.src + "'><figcaption class='muted'>" + esc(p.title) + "</figcaption>")); });
  }
  window.stlReady = performance.now();
  document.documentElement.setAttribute("data-ready", "true");
})();
