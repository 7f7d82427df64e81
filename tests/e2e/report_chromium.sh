#!/usr/bin/env bash
# `report` end to end (issue 6): 18 runs of a small campaign into one store (selftest.sleep at two
# sleeps x two precisions, a failing task, a task skipped for want of a GPU), with a level shift
# planted in one series from run 10 and a 50% slowdown in the newest run of another (h5py scales
# the stored latencies and samples of those rows). Then:
#   1. `report --store --out report.html --csv --json --junit --markdown` exits 0;
#   2. the JUnit file validates against tests/data/junit.xsd (xmllint) and holds one testcase per
#      task plus a failing testcase per regressed series — all of them the slowed task's — the
#      failed task as a failure, the skipped one as skipped; the Markdown lists the regressions
#      before the failed task;
#   3. the CSV reads in pandas with one row per task and the store's exact values and strings;
#   4. report.html in headless Chromium, driven over the DevTools protocol (--remote-debugging-pipe):
#      no console message, no uncaught exception, no error log entry, no request other than the
#      file itself (it is self-contained); one uPlot chart per series with painted canvases; the
#      legend shows the values under a hovering mouse; every in-page link points at an element that
#      exists; no "null"/"undefined"/"NaN" in the text; latency change points only on the shifted
#      task, regressions only on the slowed one. A full-page screenshot is kept:
#      $IPFSA_ARTIFACT_DIR/report.png, else $IPFSA_BUILD_DIR/test-artifacts/report.png (its path is
#      printed), with report.html beside it;
#   5. bad input: a missing store and an unknown run exit 2 naming them; an unwritable --out exits 3.
# Skips (77) when chromium, node or xmllint is not installed (scripts/install-deps.sh installs them).
source "$(dirname "$0")/lib.bash"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "SKIP: chromium is not installed (scripts/install-deps.sh installs it)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node is not installed (scripts/install-deps.sh installs it)"; exit 77; }
command -v xmllint >/dev/null || { echo "SKIP: xmllint (libxml2-utils) is not installed"; exit 77; }
ARTIFACTS=${IPFSA_ARTIFACT_DIR:-${IPFSA_BUILD_DIR:-$IPFSA_SOURCE_DIR/build}/test-artifacts}

cat > campaign.yaml <<'YAML'
name: report-e2e
defaults: {repeats: 3, warmup: 0, timeout_s: 20, retries: 0}
tasks:
  - kind: selftest.fail
    name: always-fails
  - kind: selftest.sleep
    name: needs-gpu
    hardware: cuda
matrix:
  - kind: selftest.sleep
    params: {ms: [20, 30]}
    precision: [fp32, int8]
YAML
RUNS=18
for i in $(seq 1 $RUNS); do
  set +e
  "$IPFSA_BIN" launch -n 3 -- campaign.yaml --store trends.h5 --out "run$i" > "run$i.log" 2>&1
  rc=$?
  set -e
  expect_eq "$rc" 1 "run $i exit code (the failing task): $(tail -3 "run$i.log")"
done
SHIFTED='selftest.sleep[ms=20]/cpu/fp32/b1/s0/latency'
SLOWED='selftest.sleep[ms=30]/cpu/int8/b1/s0/latency'

# Plant: SHIFTED 1.4x from run 10 on (a change point after 9 runs), SLOWED 1.5x in the newest run.
"$PY" - trends.h5 "$SHIFTED" "$SLOWED" <<'PY'
import sys, h5py
path, shifted, slowed = sys.argv[1:]
with h5py.File(path, "r+", libver="latest") as f:
    runs = [r.decode() for r in f["runs"]["run_id"][()]]
    res, samples = f["results"], f["samples"]
    rows = res[()]
    cols = [c for c in rows.dtype.names if c.startswith("latency_")]
    for i, row in enumerate(rows):
        task, run = row["task_id"].rstrip(b"\0").decode(), row["run_id"].rstrip(b"\0").decode()
        k = runs.index(run)
        factor = 1.4 if task == shifted and k >= 9 else 1.5 if task == slowed and k == len(runs) - 1 else 1.0
        if factor == 1.0 or not row["final"]:
            continue
        for c in cols:
            row[c] *= factor
        res[i] = row
        lo, n = int(row["samples_offset"]), int(row["samples_count"])
        samples[lo:lo + n] = samples[lo:lo + n] * factor
PY

"$IPFSA_BIN" report --store trends.h5 --out report.html --csv results.csv --json results.json \
  --junit junit.xml --markdown summary.md > report.log
cat report.log
RUN_ID=$(json "run$RUNS/summary.json" run_id)
TASKS=$(json "run$RUNS/summary.json" tasks_total)

# 2. JUnit and Markdown.
xmllint --noout --schema "$IPFSA_SOURCE_DIR/tests/data/junit.xsd" junit.xml || fail "junit.xml does not validate"
# Series keys are matched by the task id they contain, so the checks hold for any key scheme of
# the trend analysis (one series per task and metric, or per configuration and fingerprint).
"$PY" - junit.xml summary.md "$TASKS" "$SLOWED" <<'PY'
import sys, xml.etree.ElementTree as ET
junit, md, tasks, slowed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
suite = ET.parse(junit).getroot().find("testsuite")
# One nested suite per task and per regression, holding its one testcase and the properties.
nested = suite.findall("testsuite")
assert all(len(n.findall("testcase")) == 1 for n in nested), "a nested suite without exactly one testcase"
assert not suite.findall("testcase") and not any(c.find("properties") is not None for c in suite.iter("testcase"))
cases = [n.find("testcase") for n in nested]
suite_of = {id(n.find("testcase")): n for n in nested}
tasks_cases = [c for c in cases if c.get("classname") != "regression"]
assert len(tasks_cases) == tasks, (len(tasks_cases), tasks)
regs = [c for c in cases if c.get("classname") == "regression"]
assert regs and all(slowed in c.get("name") for c in regs), [c.get("name") for c in regs]
assert all(c.find("failure").get("type") == "regression" for c in regs)
failed = [c.get("name") for c in tasks_cases if c.find("failure") is not None]
assert failed == ["selftest.fail:always-fails/cpu/fp32/b1/s0/latency"], failed
skipped = [c.get("name") for c in tasks_cases if c.find("skipped") is not None]
assert skipped == ["selftest.sleep:needs-gpu/cuda/fp32/b1/s0/latency"], skipped
assert suite.get("tests") == str(tasks + len(regs)) and suite.get("failures") == str(1 + len(regs))
assert suite.get("skipped") == "1"
sleep = next(c for c in tasks_cases if c.get("name").startswith("selftest.sleep[ms=20]"))
props = {p.get("name"): p.get("value") for p in suite_of[id(sleep)].find("properties")}
assert float(props["latency_p50_s"]) > 0.019 and props["samples"] == "3", props
text = open(md).read()
assert text.index(f"### Regressions ({len(regs)})") < text.index("### Tasks that did not pass (1)"), text
assert slowed in text
print("junit/markdown: ok")
PY

# The verdicts follow the thresholds: with a minimum effect of 1000% nothing regresses.
"$IPFSA_BIN" report --store trends.h5 --junit lenient.xml --threshold-pct 1000 --throughput-pct 1000 \
  --accuracy-abs 1 > /dev/null || fail "report with --threshold-pct failed"
! grep -q 'classname="regression"' lenient.xml || fail "a regression despite --threshold-pct 1000"
grep -q 'classname="regression"' junit.xml || fail "no regression at the default thresholds"

# 3. CSV through pandas, against the store read with h5py.
"$PY" - results.csv trends.h5 "$RUN_ID" "$TASKS" <<'PY'
import sys, h5py, numpy as np, pandas as pd
csv, store, run_id, tasks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
df = pd.read_csv(csv, keep_default_na=False, na_values=[""], float_precision="round_trip")
assert len(df) == tasks and (df["run_id"] == run_id).all(), df
with h5py.File(store, "r", libver="latest", swmr=True) as f:
    r = f["results"][()]
dec = lambda b: b.rstrip(b"\0").decode()
final = {dec(x["task_id"]): x for x in r if dec(x["run_id"]) == run_id and x["final"]}
assert set(df["task_id"]) == set(final), (set(df["task_id"]), set(final))
for _, row in df.iterrows():
    x = final[row["task_id"]]
    assert row["status"] == dec(x["status"]), row
    err = row["error"] if isinstance(row["error"], str) else ""
    assert err == dec(x["error"]), (err, dec(x["error"]))
    for c in ("latency_p50_s", "latency_p99_s", "latency_mean_s", "throughput"):
        a, b = row[c], x[c]
        assert (np.isnan(a) and np.isnan(b)) or a == b, (c, a, b)
print("csv: ok,", len(df), "rows")
PY

# 4. The page in headless Chromium over the DevTools protocol.
cat > drive.js <<'JS'
// Loads report.html in headless Chromium over --remote-debugging-pipe and prints what it saw.
const { spawn } = require("child_process");
const fs = require("fs");
const [chromium, page, shot, profile] = process.argv.slice(2);
const proc = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
  "--hide-scrollbars", "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
  "--user-data-dir=" + profile, "--window-size=1280,1000", "about:blank"],
  { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
const timer = setTimeout(() => { console.error("drive.js: timed out"); proc.kill("SIGKILL"); process.exit(2); }, 40000);
let nextId = 0, buf = Buffer.alloc(0);
const pending = new Map(), events = [];
proc.stdio[4].on("data", (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (let i; (i = buf.indexOf(0)) >= 0; buf = buf.subarray(i + 1)) {
    const m = JSON.parse(buf.subarray(0, i).toString("utf8"));
    if (m.id !== undefined && pending.has(m.id)) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      m.error ? p.reject(new Error(m.error.message)) : p.resolve(m.result);
    } else if (m.method) events.push(m);
  }
});
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = ++nextId;
  pending.set(id, { resolve, reject });
  proc.stdio[3].write(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }) + "\0");
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const s = (method, params) => send(method, params, sessionId);
  for (const d of ["Runtime", "Log", "Network", "Page"]) await s(d + ".enable");
  const url = "file://" + page;
  await s("Page.navigate", { url });
  const evaluate = async (expr) => (await s("Runtime.evaluate", { expression: expr, returnByValue: true })).result.value;
  let ready = null;
  for (let t = 0; t < 100 && ready !== "1"; ++t) {
    ready = await evaluate("document.documentElement.dataset.ipfsaReady || null");
    if (ready !== "1") await sleep(100);
  }
  await sleep(300);  // let anything late (timers, resize) report
  // Hover the first plot: its legend must show the values under the cursor.
  const at = await evaluate(`(() => {
    const o = document.querySelector(".uplot .u-over");
    if (!o) return null;
    o.scrollIntoView({ block: "center" });
    const r = o.getBoundingClientRect();
    return { x: r.left + r.width * 0.95, y: r.top + r.height / 2 };
  })()`);
  let hover = [];
  if (at) {
    await s("Input.dispatchMouseEvent", { type: "mouseMoved", x: at.x, y: at.y });
    await sleep(200);
    hover = await evaluate(`[...document.querySelector(".uplot").querySelectorAll(".u-legend .u-value")].map((e) => e.textContent)`);
  }
  await evaluate("window.scrollTo(0, 0), 0");
  const dom = await evaluate(`(() => {
    const data = JSON.parse(document.getElementById("ipfsa-data").textContent);
    const canvases = [...document.querySelectorAll(".uplot canvas")];
    const painted = canvases.filter((c) => {
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ++n;
      return n > 500;
    }).length;
    const links = [...document.querySelectorAll('a[href^="#"]')].map((a) => a.getAttribute("href"));
    const broken = [...new Set(links)].filter((h) => h.length > 1 && !document.getElementById(decodeURIComponent(h.slice(1))));
    return {
      plotsAttr: document.documentElement.dataset.ipfsaPlots,
      uplots: document.querySelectorAll(".uplot").length,
      canvases: canvases.length, painted,
      series: data.series.length,
      seriesKeys: data.series.map((x) => x.key),
      changePoints: data.series.filter((x) => x.change_points.length).map((x) => x.key),
      regressionLinks: [...document.querySelectorAll("#regressions tbody tr td:first-child a")].map((a) => a.textContent),
      failureRows: document.querySelectorAll("#failures tbody tr").length,
      matrixCells: document.querySelectorAll("#matrix td.cell:not(.none)").length,
      compareRows: document.querySelectorAll("#compare tbody tr").length,
      taskRows: document.querySelectorAll("#tasks tbody tr").length,
      links: links.length, broken,
      stray: document.body.innerText.match(/\\b(null|undefined|NaN|object Object)\\b/g) || [],
    };
  })()`);
  const metrics = await s("Page.getLayoutMetrics");
  const size = metrics.cssContentSize || metrics.contentSize;
  const png = await s("Page.captureScreenshot", { format: "png", captureBeyondViewport: true,
    clip: { x: 0, y: 0, width: Math.ceil(size.width), height: Math.min(Math.ceil(size.height), 12000), scale: 1 } });
  fs.writeFileSync(shot, Buffer.from(png.data, "base64"));
  const seen = (method, f) => events.filter((e) => e.method === method).map(f);
  const out = {
    ready, ...dom, hover,
    console: seen("Runtime.consoleAPICalled", (e) => e.params.type + ": " + e.params.args.map((a) => a.value ?? a.description).join(" ")),
    exceptions: seen("Runtime.exceptionThrown", (e) => e.params.exceptionDetails.exception?.description || e.params.exceptionDetails.text),
    logErrors: seen("Log.entryAdded", (e) => e.params.entry).filter((e) => e.level === "error").map((e) => e.text + " " + (e.url || "")),
    requests: seen("Network.requestWillBeSent", (e) => e.params.request.url),
  };
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
  await send("Browser.close").catch(() => {});
  clearTimeout(timer);
})().catch((e) => { console.error("drive.js: " + e.stack); proc.kill("SIGKILL"); process.exit(2); });
JS
node drive.js "$CHROMIUM" "$PWD/report.html" "$PWD/report.png" "$PWD/chromium-profile" > page.json \
  || fail "could not drive chromium"
mkdir -p "$ARTIFACTS"
cp report.png "$ARTIFACTS/report.png"
cp report.html "$ARTIFACTS/report.html"
echo "screenshot: $ARTIFACTS/report.png"
"$PY" - page.json "$SHIFTED" "$SLOWED" "$PWD/report.html" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
shifted, slowed, page = sys.argv[2], sys.argv[3], sys.argv[4]
problems = []
def check(cond, what):
    if not cond: problems.append(what)
check(p["ready"] == "1", "the page script did not finish (data-ipfsa-ready)")
check(not p["console"], f"console messages: {p['console']}")
check(not p["exceptions"], f"uncaught exceptions: {p['exceptions']}")
check(not p["logErrors"], f"error log entries: {p['logErrors']}")
check(p["requests"] == ["file://" + page], f"requests other than the page itself: {p['requests']}")
check(p["series"] >= 4, f"a series per sleep task (20/30 ms x fp32/int8) expected, got {p['seriesKeys']}")
check(p["uplots"] == p["series"] == int(p["plotsAttr"]), f"uPlot charts {p['uplots']}, series {p['series']}, drawn {p['plotsAttr']}")
check(p["canvases"] >= p["series"] and p["painted"] == p["canvases"], f"{p['painted']} of {p['canvases']} canvases painted")
latency_cps = [k for k in p["changePoints"] if "latency" in k]
check(latency_cps and all(shifted in k for k in latency_cps), f"latency change points expected on {shifted} only, got {p['changePoints']}")
check(p["regressionLinks"] and all(slowed in k for k in p["regressionLinks"]), f"regressions table: {p['regressionLinks']}")
check(p["failureRows"] == 1, f"failure rows: {p['failureRows']}")
check(p["taskRows"] == 6 and p["matrixCells"] >= 3, f"task rows {p['taskRows']}, matrix cells {p['matrixCells']}")
check(p["compareRows"] >= 1, "the comparison of the last two runs shows no change (the slowed task moved)")
check(len(p["hover"]) == 3 and all(v not in ("", "–") for v in p["hover"]), f"legend values on hover: {p['hover']}")
check(not p["stray"], f"stray values in the page text: {p['stray']}")
check(p["links"] > 20 and not p["broken"], f"in-page links: {p['links']}, broken: {p['broken']}")
if problems:
    sys.exit("page problems:\n  " + "\n  ".join(problems))
print(f"page: ok ({p['uplots']} plots, {p['links']} links, {len(p['requests'])} request, hover legend {p['hover']})")
PY

# 5. Bad input.
set +e
"$IPFSA_BIN" report --store missing.h5 --out x.html 2> err1.txt; rc1=$?
"$IPFSA_BIN" report --store trends.h5 --run no-such-run --out x.html 2> err2.txt; rc2=$?
touch afile
"$IPFSA_BIN" report --store trends.h5 --out afile/report.html 2> err3.txt; rc3=$?
set -e
expect_eq "$rc1" 2 "exit code for a missing store"
grep -q "missing.h5" err1.txt || fail "message does not name the store: $(cat err1.txt)"
expect_eq "$rc2" 2 "exit code for an unknown run"
grep -q "no-such-run" err2.txt || fail "message does not name the run: $(cat err2.txt)"
expect_eq "$rc3" 3 "exit code for an unwritable --out"
grep -q "afile/report.html" err3.txt || fail "message does not name the output: $(cat err3.txt)"
[ ! -e x.html ] || fail "a report was written despite the bad input"
echo "PASS"
