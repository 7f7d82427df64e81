// The page script of report.html (docs/report.md): draws the overview, regressions and failures,
// the trend plots (uPlot), the compatibility matrix, the run-to-run comparison, the run list and
// the task table from the JSON that src/report/html_report.cpp embeds in the page (the script
// element with id "ipfsa-data"). Plain JavaScript, no framework, no network. Stored text is only ever
// put into the page with textContent (never parsed as HTML).
//
// When done it sets <html data-ipfsa-ready="1" data-ipfsa-plots=N> (N uPlot charts drawn); the
// headless-browser test (tests/e2e/report_chromium.sh) reads both.
(function () {
  "use strict";

  const D = JSON.parse(document.getElementById("ipfsa-data").textContent);
  const RUN = D.runs[D.run];
  const MAX_PLOTS = 400; // plots drawn at once; the filter reaches the others
  const MAX_ROWS = 1000; // rows of the comparison and task tables drawn before "Show all"
  const FAIL = new Set(["failed", "crashed", "timeout", "oom", "lost", "unfinished"]);

  // ---- small helpers ----

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const link = (href, text, cls) => el("a", { href: href, class: cls, text: text });
  const isNum = (v) => typeof v === "number" && isFinite(v);

  function fmtSeconds(v) {
    if (!isNum(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1) return v.toPrecision(4) + " s";
    if (a >= 1e-3) return (v * 1e3).toPrecision(4) + " ms";
    if (a >= 1e-6) return (v * 1e6).toPrecision(4) + " µs";
    if (a === 0) return "0";
    return (v * 1e9).toPrecision(4) + " ns";
  }
  const fmtNum = (v, digits) => (isNum(v) ? Number(v.toPrecision(digits || 4)).toString() : "–");
  const fmtPct = (v) => (isNum(v) ? (v > 0 ? "+" : "") + v.toFixed(1) + "%" : "–");
  function fmtTime(unix) {
    if (!isNum(unix) || unix <= 0) return "–";
    return new Date(unix * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
  function fmtDuration(a, b) {
    if (!isNum(a) || !isNum(b) || b <= a || a <= 0) return "–";
    const s = b - a;
    return s >= 120 ? (s / 60).toFixed(1) + " min" : s.toFixed(1) + " s";
  }
  const firstLine = (s, n) => {
    const l = String(s || "").split(/\r?\n/)[0];
    return l.length > (n || 160) ? l.slice(0, n || 160) + "…" : l;
  };
  const statusBadge = (s) => el("span", { class: "badge st-" + s, text: s });
  const pctChange = (a, b) => (isNum(a) && isNum(b) && a !== 0 ? ((b - a) / Math.abs(a)) * 100 : NaN);
  function median(xs) {
    const v = xs.filter(isNum).sort((a, b) => a - b);
    if (!v.length) return NaN;
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }
  const runName = (i) => "#" + (i + 1);

  // ---- derived data ----

  // Per run: task config index -> row index in that run's result columns.
  const rowOf = D.runs.map((r) => {
    const m = new Map();
    r.results.config.forEach((c, i) => m.set(c, i));
    return m;
  });
  function result(runIdx, config) {
    const r = D.runs[runIdx];
    const i = rowOf[runIdx].get(config);
    if (i === undefined) return null;
    const o = {};
    for (const k of Object.keys(r.results)) o[k] = r.results[k][i];
    return o;
  }
  // Series in display order: regressions, improvements, anomalies, with change points, the rest.
  D.series.forEach((s, i) => (s.index = i));
  const rank = (s) =>
    s.verdict === "regression" ? 0 : s.verdict === "improvement" ? 1 : s.anomaly ? 2 : s.change_points.length ? 3 : 4;
  const seriesOrder = D.series.slice().sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key));
  const seriesOfConfig = new Map();
  for (const s of seriesOrder) if (s.config >= 0 && !seriesOfConfig.has(s.config)) seriesOfConfig.set(s.config, s);
  // Run id of a series' point i ("runs" is only embedded when a point's run is not in the page).
  const pointRun = (s, i) => (s.run_index[i] >= 0 ? D.runs[s.run_index[i]].id : s.runs ? s.runs[i] : "");
  // A regression of this run: the series' newest point is from it (an older newest point says
  // nothing about this run).
  const regressions = seriesOrder
    .filter((s) => s.verdict === "regression" && (!s.values.length || pointRun(s, s.values.length - 1) === RUN.id))
    .sort((a, b) => Math.abs(b.newest_effect_pct) - Math.abs(a.newest_effect_pct));
  const isSeconds = (key) => /latency|_s$|(^|\/)p\d\d/.test(key);
  const seriesFmt = (s) => (isSeconds(s.key) ? fmtSeconds : (v) => fmtNum(v, 5));
  const taskHref = (c) => "#task-" + c;
  const seriesHref = (s) => "#series-" + s.index;
  const configName = (c) => (c >= 0 && D.configs[c] ? D.configs[c].id : "");

  function table(headers, rows, cls) {
    return el(
      "table",
      { class: cls || "" },
      el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows)
    );
  }
  const td = (content, cls) => el("td", { class: cls }, content);
  function section(id, title, ...children) {
    return el("section", { id: id }, el("h2", {}, el("a", { href: "#" + id, class: "anchor", text: "#" }), " " + title), ...children);
  }

  // A table of `items` drawing the first MAX_ROWS rows, with a button that draws the rest.
  function cappedTable(headers, items, renderRow) {
    const wrap = el("div", {});
    const draw = (limit) => {
      const rows = items.slice(0, limit).map(renderRow);
      const rest = items.length - rows.length;
      wrap.replaceChildren(el("div", { class: "scroll" }, table(headers, rows, "data")));
      if (rest > 0)
        wrap.append(el("p", { class: "muted" }, rest + " more rows. ", el("button", { type: "button", onclick: () => draw(Infinity), text: "Show all " + items.length })));
    };
    draw(MAX_ROWS);
    return wrap;
  }

  // ---- header and overview ----

  const app = document.getElementById("app");
  const nav = el(
    "nav",
    {},
    ...[
      ["overview", "Overview"],
      ["regressions", "Regressions"],
      ["failures", "Failures"],
      ["trends", "Trends"],
      ["matrix", "Matrix"],
      ["compare", "Comparison"],
      ["runs", "Runs"],
      ["tasks", "Tasks"],
    ].map(([id, t]) => link("#" + id, t))
  );
  app.append(
    el("header", {}, el("h1", {}, "ipfs-accelerate report ", el("code", { text: RUN.id })), nav)
  );

  const c = RUN.counts;
  const bad = c.failed + c.crashed + c.timeout + c.oom + c.other;
  const verdictOk = bad === 0 && regressions.length === 0;
  const tiles = [
    ["passed", c.passed],
    ["failed", c.failed],
    ["crashed", c.crashed],
    ["timeout", c.timeout],
    ["oom", c.oom],
    ["skipped", c.skipped],
    ["other", c.other],
    ["flaky", c.flaky],
    ["regressions", regressions.length],
  ].map(([k, n]) =>
    el("a", { class: "tile st-" + k + (n ? "" : " zero"), href: k === "regressions" ? "#regressions" : "#tasks" },
      el("span", { class: "n", text: n }), el("span", { class: "k", text: k }))
  );
  const facts = [
    ["campaign", RUN.campaign],
    ["run status", RUN.status],
    ["started", fmtTime(RUN.started_unix)],
    ["wall time", fmtDuration(RUN.started_unix, RUN.ended_unix)],
    ["tasks", RUN.tasks_total + (RUN.tasks_total > c.tasks ? " (" + (RUN.tasks_total - c.tasks) + " without a result)" : "")],
    ["ranks / workers", RUN.ranks + " / " + RUN.workers],
    ["version", RUN.version + (RUN.git_commit ? " (" + RUN.git_commit + ")" : "")],
    ["hosts", RUN.hosts],
    ["source", RUN.campaign_source],
    ["run", runName(D.run) + " of the " + D.runs.length + " runs in this report"],
  ];
  app.append(
    section(
      "overview",
      "Overview",
      el(
        "p",
        { class: "verdict " + (verdictOk ? "ok" : "bad") },
        verdictOk
          ? "No task failed and no series regressed."
          : [bad ? bad + " task(s) did not pass" : "", regressions.length ? regressions.length + " series regressed" : ""]
              .filter(Boolean)
              .join(", ") + "."
      ),
      el("div", { class: "tiles" }, ...tiles),
      el("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v || "–" })]))
    )
  );

  // ---- regressions first, then failures ----

  app.append(
    section(
      "regressions",
      "Regressions (" + regressions.length + ")",
      regressions.length
        ? table(
            ["series", "task", "newest", "effect", "robust z", "change points"],
            regressions.map((s) =>
              el(
                "tr",
                {},
                td(link(seriesHref(s), s.key)),
                td(s.config >= 0 ? link(taskHref(s.config), "task") : "–"),
                td(seriesFmt(s)(s.values[s.values.length - 1]), "num"),
                td(fmtPct(s.newest_effect_pct), "num bad"),
                td(fmtNum(s.newest_z, 3), "num"),
                td(String(s.change_points.length), "num")
              )
            ),
            "data"
          )
        : el("p", { class: "muted", text: "No series regressed in this run." })
    )
  );

  const runRows = RUN.results.config.map((cfg) => result(D.run, cfg));
  const failures = runRows.filter((r) => FAIL.has(r.status));
  app.append(
    section(
      "failures",
      "Tasks that did not pass (" + failures.length + ")",
      failures.length
        ? table(
            ["task", "status", "attempts", "worker", "error"],
            failures.map((r) =>
              el(
                "tr",
                {},
                td(link(taskHref(r.config), configName(r.config))),
                td(statusBadge(r.status)),
                td(String(r.attempts), "num"),
                td(r.worker || "–"),
                td(firstLine(r.error, 200), "err")
              )
            ),
            "data"
          )
        : el("p", { class: "muted", text: "Every task passed or was skipped." })
    )
  );

  // ---- trend plots ----

  const plots = [];
  function segmentMedians(s) {
    const cuts = [0, ...s.change_points.map((cp) => cp.index), s.values.length];
    const out = new Array(s.values.length).fill(null);
    for (let k = 0; k + 1 < cuts.length; ++k) {
      const m = median(s.values.slice(cuts[k], cuts[k + 1]));
      for (let i = cuts[k]; i < cuts[k + 1]; ++i) out[i] = isNum(m) ? m : null;
    }
    return out;
  }
  // Change points: dashed vertical lines between the last point before and the first after, with
  // the magnitude; anomaly: a ring around the newest point.
  function drawMarks(u, s) {
    const ctx = u.ctx;
    const dpr = window.devicePixelRatio || 1;
    const top = u.bbox.top;
    const bottom = u.bbox.top + u.bbox.height;
    ctx.save();
    ctx.font = 11 * dpr + "px sans-serif";
    for (const cp of s.change_points) {
      const x = u.valToPos(cp.index - 0.5, "x", true);
      ctx.strokeStyle = "#d97706";
      ctx.lineWidth = 1.5 * dpr;
      ctx.setLineDash([5 * dpr, 4 * dpr]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#b45309";
      ctx.fillText(fmtPct(cp.magnitude_pct), x + 3 * dpr, top + 12 * dpr);
    }
    const last = s.values.length - 1;
    if (s.anomaly && last >= 0 && isNum(s.values[last])) {
      const x = u.valToPos(last, "x", true);
      const y = u.valToPos(s.values[last], "y", true);
      ctx.strokeStyle = s.verdict === "improvement" ? "#059669" : "#dc2626";
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      ctx.arc(x, y, 7 * dpr, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
  }
  function plotWidth(box) {
    return Math.max(280, Math.floor(box.getBoundingClientRect().width) - 2);
  }
  function makePlot(s, box) {
    const fmt = seriesFmt(s);
    const xs = s.values.map((_, i) => i);
    const xLabel = (i) => (s.run_index[i] >= 0 ? runName(s.run_index[i]) : String(i + 1));
    const opts = {
      width: plotWidth(box),
      height: 210,
      scales: { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        {
          label: "run",
          value: (u, v) => (v === null || v === undefined || v >= s.values.length ? "–" : xLabel(v) + " " + pointRun(s, v)),
        },
        {
          label: s.key.split("/").pop() || "value",
          stroke: "#2563eb",
          width: 2,
          points: { show: true, size: 6, fill: "#2563eb" },
          value: (u, v) => fmt(v),
        },
        {
          label: "segment median",
          stroke: "#9ca3af",
          width: 1,
          dash: [6, 4],
          points: { show: false },
          value: (u, v) => fmt(v),
        },
      ],
      axes: [
        { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500], values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? xLabel(v) : "")) },
        { size: 80, values: (u, splits) => splits.map((v) => fmt(v)) },
      ],
      hooks: { draw: [(u) => drawMarks(u, s)] },
    };
    return new uPlot(opts, [xs, s.values.map((v) => (isNum(v) ? v : null)), segmentMedians(s)], box);
  }

  // Cards are built and plotted on demand: the first MAX_PLOTS series in display order, or the
  // first MAX_PLOTS that match the filter, or the one a #series-N link asks for.
  const filter = el("input", { type: "search", placeholder: "filter series by key", "aria-label": "filter series" });
  const grid = el("div", { class: "plots" });
  const more = el("p", { class: "muted" });
  const cardOf = new Map(); // series index -> card
  function cardFor(s) {
    if (cardOf.has(s.index)) return cardOf.get(s.index);
    const badges = [];
    if (s.verdict !== "none") badges.push(el("span", { class: "badge v-" + s.verdict, text: s.verdict }));
    if (s.anomaly) badges.push(el("span", { class: "badge anomaly", text: "anomaly" + (isNum(s.newest_z) ? " z=" + fmtNum(s.newest_z, 3) : "") }));
    if (s.change_points.length) badges.push(el("span", { class: "badge cp", text: s.change_points.length + " change point(s)" }));
    const box = el("div", { class: "plot" });
    const card = el(
      "div",
      { class: "card v-" + s.verdict, id: "series-" + s.index },
      el("h3", {}, link(seriesHref(s), s.key, "key")),
      el(
        "div",
        { class: "meta" },
        ...badges,
        el("span", { class: "muted", text: s.values.length + " runs, newest " + fmtPct(s.newest_effect_pct) + " vs baseline" }),
        s.config >= 0 ? link(taskHref(s.config), "task ↗") : null
      ),
      box
    );
    card.plotBox = box;
    card.series = s;
    cardOf.set(s.index, card);
    return card;
  }
  function showSeries(list) {
    const shown = list.slice(0, MAX_PLOTS).map(cardFor);
    grid.replaceChildren(...shown);
    for (const card of shown) {
      if (!card.plot) {
        card.plot = makePlot(card.series, card.plotBox);
        plots.push(card.plot);
      }
    }
    more.textContent =
      list.length > MAX_PLOTS ? list.length - MAX_PLOTS + " more series " + (filter.value ? "match" : "not drawn") + " (at most " + MAX_PLOTS + " are drawn): narrow them with the filter." : "";
  }
  let filterTimer = 0;
  filter.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      const q = filter.value.trim().toLowerCase();
      showSeries(q ? seriesOrder.filter((s) => s.key.toLowerCase().includes(q)) : seriesOrder);
    }, 150);
  });
  app.append(
    section(
      "trends",
      "Trends (" + D.series.length + " series)",
      el(
        "p",
        { class: "muted" },
        "One point per run. Dashed orange lines: change points (with the shift of the segment medians); red ring: the newest point is an anomaly; grey dashes: segment medians. Hover a plot for the values; drag to zoom, double-click to reset."
      ),
      filter,
      D.series.length ? grid : el("p", { class: "muted", text: "No series with two or more runs yet." }),
      more
    )
  );

  // ---- compatibility matrix: model x (hardware, precision) of the overview run ----

  const groups = new Map(); // model -> column key -> [rows]
  const columns = new Map(); // column key -> {hardware, precision}
  for (const r of runRows) {
    const cfg = D.configs[r.config];
    const model = cfg.model || cfg.kind;
    const col = cfg.hardware + " · " + cfg.precision;
    columns.set(col, { hardware: cfg.hardware, precision: cfg.precision });
    if (!groups.has(model)) groups.set(model, new Map());
    const g = groups.get(model);
    if (!g.has(col)) g.set(col, []);
    g.get(col).push(r);
  }
  const precisionRank = (p) => {
    const order = ["fp32", "bf16", "fp16", "fp8", "int8", "int4", "int3", "int2"];
    const i = order.indexOf(p);
    return i < 0 ? order.length : i;
  };
  const colKeys = [...columns.keys()].sort((a, b) => {
    const x = columns.get(a);
    const y = columns.get(b);
    return x.hardware.localeCompare(y.hardware) || precisionRank(x.precision) - precisionRank(y.precision) || x.precision.localeCompare(y.precision);
  });
  function matrixCell(rows) {
    if (!rows) return el("td", { class: "cell none", text: "" });
    const n = rows.length;
    const passed = rows.filter((r) => r.status === "passed").length;
    const failed = rows.filter((r) => FAIL.has(r.status)).length;
    const skipped = rows.filter((r) => r.status === "skipped").length;
    const cos = rows.map((r) => r.cosine).filter(isNum);
    const minCos = cos.length ? Math.min(...cos) : NaN;
    let cls = "pass";
    if (failed) cls = "fail";
    else if (skipped === n) cls = "skip";
    else if (isNum(minCos)) cls = minCos >= 0.999 ? "acc-hi" : minCos >= 0.99 ? "acc-mid" : minCos >= 0.95 ? "acc-lo" : "acc-bad";
    const title = rows.map((r) => configName(r.config) + ": " + r.status + (isNum(r.cosine) ? " cos " + fmtNum(r.cosine, 5) : "")).join("\n");
    return el(
      "td",
      { class: "cell " + cls, title: title },
      link(taskHref(rows[0].config), passed + "/" + n),
      failed ? el("div", { class: "acc", text: failed + " failed" }) : null,
      skipped && skipped < n ? el("div", { class: "acc", text: skipped + " skipped" }) : null,
      isNum(minCos) ? el("div", { class: "acc", text: "cos " + fmtNum(minCos, 5) }) : null
    );
  }
  app.append(
    section(
      "matrix",
      "Compatibility matrix",
      el("p", { class: "muted", text: "Run " + runName(D.run) + ": tasks passed / tasks per model (or kind) on each hardware and precision. Green: passed (darker: cosine ≥ 0.999 against fp32, lighter: lower accuracy); red: some task failed; grey: skipped. Hover a cell for its tasks; click it for the task table." }),
      groups.size
        ? el(
            "div",
            { class: "scroll" },
            table(
              ["model", ...colKeys],
              [...groups.keys()].sort().map((m) => el("tr", {}, el("th", { text: m }), ...colKeys.map((k) => matrixCell(groups.get(m).get(k))))),
              "matrix"
            )
          )
        : el("p", { class: "muted", text: "No results." })
    )
  );

  // ---- run-to-run comparison ----

  const selA = el("select", { "aria-label": "baseline run" });
  const selB = el("select", { "aria-label": "compared run" });
  D.runs.forEach((r, i) => {
    const label = runName(i) + " " + r.id + " (" + r.status + ")";
    selA.append(el("option", { value: i, text: label }));
    selB.append(el("option", { value: i, text: label }));
  });
  selA.value = String(Math.max(0, D.run - 1));
  selB.value = String(D.run);
  const onlyChanges = el("input", { type: "checkbox", checked: true, id: "only-changes" });
  const cmpBody = el("div", {});
  function renderComparison() {
    const a = Number(selA.value);
    const b = Number(selB.value);
    const configs = new Set([...D.runs[a].results.config, ...D.runs[b].results.config]);
    const rows = [];
    for (const cfg of configs) {
      const ra = result(a, cfg);
      const rb = result(b, cfg);
      const sa = ra ? ra.status : "absent";
      const sb = rb ? rb.status : "absent";
      const d50 = pctChange(ra && ra.p50, rb && rb.p50);
      const d99 = pctChange(ra && ra.p99, rb && rb.p99);
      const dthr = pctChange(ra && ra.throughput, rb && rb.throughput);
      const changed = sa !== sb || Math.abs(d50) >= 5 || Math.abs(d99) >= 5 || Math.abs(dthr) >= 5;
      rows.push({ cfg, ra, rb, sa, sb, d50, d99, dthr, changed, weight: (sa !== sb ? 1e9 : 0) + (isNum(d50) ? Math.abs(d50) : 0) });
    }
    rows.sort((x, y) => y.weight - x.weight || configName(x.cfg).localeCompare(configName(y.cfg)));
    const shown = onlyChanges.checked ? rows.filter((r) => r.changed) : rows;
    const deltaCell = (v, higherIsWorse) =>
      td(fmtPct(v), "num" + (isNum(v) && Math.abs(v) >= 5 ? ((v > 0) === higherIsWorse ? " bad" : " good") : ""));
    // (replaceChildren, unlike el(), would turn a null child into the text "null".)
    cmpBody.replaceChildren(
      el("p", { class: "muted", text: shown.length + " of " + rows.length + " tasks shown" + (onlyChanges.checked ? " (status changed, or p50, p99 or throughput moved by 5% or more)" : "") + "." }),
      shown.length
        ? cappedTable(
            ["task", "status A", "status B", "p50 A", "p50 B", "Δ p50", "Δ p99", "Δ throughput", "cosine A → B", "trend"],
            shown,
            (r) => {
              const s = seriesOfConfig.get(r.cfg);
              return el(
                "tr",
                { class: r.sa !== r.sb ? "changed" : "" },
                td(b === D.run || a === D.run ? link(taskHref(r.cfg), configName(r.cfg)) : configName(r.cfg)),
                td(statusBadge(r.sa)),
                td(statusBadge(r.sb)),
                td(fmtSeconds(r.ra && r.ra.p50), "num"),
                td(fmtSeconds(r.rb && r.rb.p50), "num"),
                deltaCell(r.d50, true),
                deltaCell(r.d99, true),
                deltaCell(r.dthr, false),
                td(fmtNum(r.ra && r.ra.cosine, 5) + " → " + fmtNum(r.rb && r.rb.cosine, 5), "num"),
                td(s ? link(seriesHref(s), "plot") : "–")
              );
            }
          )
        : el("div", {})
    );
  }
  for (const e of [selA, selB, onlyChanges]) e.addEventListener("change", renderComparison);
  app.append(
    section(
      "compare",
      "Run-to-run comparison",
      el("div", { class: "controls" }, el("label", {}, "A ", selA), el("label", {}, "B ", selB), el("label", {}, onlyChanges, " only changes")),
      cmpBody
    )
  );
  renderComparison();

  // ---- runs ----

  function compareWith(i) {
    return (ev) => {
      ev.preventDefault();
      selA.value = String(i);
      selB.value = String(D.run);
      renderComparison();
      document.getElementById("compare").scrollIntoView();
      history.replaceState(null, "", "#compare");
    };
  }
  app.append(
    section(
      "runs",
      "Runs (" + D.runs.length + ")",
      el(
        "div",
        { class: "scroll" },
        table(
          ["", "run", "campaign", "status", "started", "wall", "tasks", "passed", "failed", "skipped", "flaky", ""],
          D.runs.map((r, i) =>
            el(
              "tr",
              { id: "run-" + i, class: i === D.run ? "current" : "" },
              td(runName(i)),
              td(el("code", { text: r.id })),
              td(r.campaign),
              td(statusBadge(r.status)),
              td(fmtTime(r.started_unix)),
              td(fmtDuration(r.started_unix, r.ended_unix), "num"),
              td(String(r.counts.tasks), "num"),
              td(String(r.counts.passed), "num"),
              td(String(r.counts.failed + r.counts.crashed + r.counts.timeout + r.counts.oom + r.counts.other), "num"),
              td(String(r.counts.skipped), "num"),
              td(String(r.counts.flaky), "num"),
              td(i === D.run ? "overview" : el("a", { href: "#compare", onclick: compareWith(i), text: "compare" }))
            )
          ),
          "data"
        )
      )
    )
  );

  // ---- tasks of the overview run ----

  const taskFilter = el("input", { type: "search", placeholder: "filter tasks by id or status", "aria-label": "filter tasks" });
  const taskBody = el("div", {});
  function taskRow(r) {
    const s = seriesOfConfig.get(r.config);
    const acc = [isNum(r.cosine) ? "cos " + fmtNum(r.cosine, 5) : "", isNum(r.top1) ? "top1 " + fmtNum(r.top1, 3) : ""].filter(Boolean).join(" ");
    return el(
      "tr",
      { id: "task-" + r.config },
      td(el("code", { text: configName(r.config) })),
      td(statusBadge(r.status)),
      td(String(r.attempts) + (r.flaky ? " (flaky)" : ""), "num"),
      td(fmtSeconds(r.p50), "num"),
      td(fmtSeconds(r.p99), "num"),
      td(fmtNum(r.throughput), "num"),
      td(acc || "–"),
      td(r.worker || "–"),
      td(isNum(r.time_s) ? r.time_s.toFixed(2) + " s" : "–", "num"),
      td(firstLine(r.error, 160), "err"),
      td(s ? link(seriesHref(s), "plot") : "–")
    );
  }
  function renderTasks() {
    const q = taskFilter.value.trim().toLowerCase();
    const items = q ? runRows.filter((r) => (configName(r.config) + " " + r.status).toLowerCase().includes(q)) : runRows;
    taskBody.replaceChildren(
      cappedTable(["task", "status", "attempts", "p50", "p99", "throughput", "accuracy", "worker", "time", "error", "trend"], items, taskRow)
    );
  }
  let taskTimer = 0;
  taskFilter.addEventListener("input", () => {
    clearTimeout(taskTimer);
    taskTimer = setTimeout(renderTasks, 150);
  });
  renderTasks();
  app.append(section("tasks", "Tasks of run " + runName(D.run) + " (" + runRows.length + ")", taskFilter, taskBody));

  app.append(
    el(
      "footer",
      {},
      "Generated " + fmtTime(D.generated_unix) + " by " + (D.generator || "ipfs-accelerate") + " from ",
      el("code", { text: D.store }),
      ". Plots: uPlot (MIT licence, in this file's source)."
    )
  );

  // ---- draw the plots once the layout has widths ----

  showSeries(seriesOrder);
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const u of plots) u.setSize({ width: plotWidth(u.root.parentNode), height: 210 });
    }, 150);
  });
  // Follow #series-N / #task-N to a series or task that is not drawn (beyond the first MAX_PLOTS
  // plots or MAX_ROWS rows, or filtered out): show it alone.
  function followHash() {
    const id = decodeURIComponent(location.hash.slice(1));
    const m = /^(series|task)-(\d+)$/.exec(id);
    if (m && !document.getElementById(id)) {
      const n = Number(m[2]);
      if (m[1] === "series" && D.series[n]) {
        filter.value = D.series[n].key;
        showSeries([D.series[n]]);
      } else if (m[1] === "task" && D.configs[n]) {
        taskFilter.value = D.configs[n].id;
        renderTasks();
      }
    }
    const target = id && document.getElementById(id);
    if (target) target.scrollIntoView();
  }
  window.addEventListener("hashchange", followHash);
  if (location.hash.length > 1) followHash();
  document.documentElement.dataset.ipfsaReady = "1";
  document.documentElement.dataset.ipfsaPlots = String(plots.length);
})();
