#!/usr/bin/python3
"""Independent check of an ipfs-accelerate trend store with h5py (docs/store.md).

usage: store_h5py_check.py STORE --expect-final N [--run RUN_ID]

Opens STORE (in SWMR read mode while a writer has it open), checks the schema (file
attributes, datasets, column names and kinds), then for the run RUN_ID (default: the newest by
start time) checks that every task 0..tasks_total-1 has exactly one final result, that there are
N final results, that every row's samples/metrics slices are inside their datasets and that the
stored latency summary matches numpy's percentiles of the raw samples. Prints a JSON summary on
stdout; exits 1 (reasons on stderr) on any mismatch, 2 on usage errors or an unreadable file.
Run it with /usr/bin/python3 (Debian's python3-h5py).
"""
import argparse
import json
import math
import os
import signal
import sys

import h5py
import numpy as np

SCHEMA_VERSIONS = (1, 2)  # 2 added /results.fingerprint (docs/store.md, Versions)
FORMAT = "ipfs-accelerate trend store"

# column -> numpy kind: S fixed bytes, u unsigned, i signed, f float
RUNS = {
    "run_id": "S", "campaign": "S", "campaign_source": "S", "version": "S", "git_commit": "S",
    "hosts": "S", "status": "S", "started_unix": "f", "ended_unix": "f", "ranks": "u",
    "coordinators": "u", "workers": "u", "tasks_total": "u", "results_first_row": "u",
}
RESULTS = {
    "run_id": "S", "task_id": "S", "task_index": "u", "attempt": "u", "final": "u", "flaky": "u",
    "kind": "S", "model": "S", "hardware": "S", "precision": "S", "batch": "u", "seq_len": "u",
    "scenario": "S", "priority": "S", "status": "S", "signal": "i", "worker_rank": "i",
    "worker_host": "S", "started_unix": "f", "ended_unix": "f", "latency_mean_s": "f",
    "latency_p50_s": "f", "latency_p90_s": "f", "latency_p99_s": "f", "latency_min_s": "f",
    "latency_max_s": "f", "latency_stddev_s": "f", "sample_count": "u", "throughput": "f",
    "peak_memory_bytes": "u", "acc_cosine": "f", "acc_rel_error": "f", "acc_kl": "f",
    "acc_top1": "f", "error": "S", "samples_offset": "u", "samples_count": "u",
    "metrics_offset": "u", "metrics_count": "u",
}
METRICS = {"result_row": "u", "name": "S", "value": "f"}
STATUSES = {"passed", "failed", "crashed", "timeout", "oom", "skipped", "lost"}


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, (bytes, np.bytes_)) else str(b)


def close(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check_columns(name, dset, want, problems):
    if dset.dtype.names is None:
        problems.append(f"/{name} is not a compound dataset")
        return
    for col, kind in want.items():
        if col not in dset.dtype.names:
            problems.append(f"/{name} lacks column {col}")
        elif dset.dtype[col].kind != kind:
            problems.append(f"/{name}.{col} has kind {dset.dtype[col].kind}, want {kind}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--expect-final", type=int, required=True, metavar="N")
    ap.add_argument("--run", default=None, metavar="RUN_ID")
    args = ap.parse_args()

    # A SWMR open retries unreadable metadata with doubling sleeps, 100 times: on a corrupt file it
    # never returns. So open plainly first, which fails at once on a corrupt file and with "already
    # open for write" while a writer (or a crashed one) has the file; then open in SWMR mode. The
    # alarm is a last guard.
    signal.signal(signal.SIGALRM, lambda *_: (print(f"{args.store}: timed out opening", file=sys.stderr),
                                              os._exit(2)))
    signal.alarm(120)
    mode = "plain"
    try:
        f = h5py.File(args.store, "r")
    except OSError as e:
        if "already open for write" not in str(e):
            print(f"{args.store}: cannot open: {e}", file=sys.stderr)
            return 2
        mode = "swmr"
        try:
            f = h5py.File(args.store, "r", libver="latest", swmr=True)
        except OSError as e2:
            print(f"{args.store}: cannot open: {e2}", file=sys.stderr)
            return 2
    signal.alarm(0)

    problems = []
    with f:
        fmt = text(f.attrs.get("format", b""))
        version = f.attrs.get("schema_version", None)
        if fmt != FORMAT:
            problems.append(f"format attribute is {fmt!r}")
        if version is None or int(version) not in SCHEMA_VERSIONS:
            problems.append(f"schema_version is {version!r}, want one of {SCHEMA_VERSIONS}")
        for name in ("runs", "results", "samples", "metrics"):
            if name not in f or not isinstance(f[name], h5py.Dataset):
                problems.append(f"no /{name} dataset")
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        results = dict(RESULTS, fingerprint="S") if int(version) >= 2 else RESULTS
        for name, want in (("runs", RUNS), ("results", results), ("metrics", METRICS)):
            check_columns(name, f[name], want, problems)
        if f["samples"].dtype != np.float64 or f["samples"].ndim != 1:
            problems.append(f"/samples is {f['samples'].dtype} with {f['samples'].ndim} dims")
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1

        runs = f["runs"][()]
        results = f["results"]
        samples = f["samples"][()]
        metrics = f["metrics"][()]

        run_ids = [text(r) for r in runs["run_id"]]
        if not run_ids:
            print("no runs in the store", file=sys.stderr)
            return 1
        if args.run is None:
            k = max(range(len(runs)), key=lambda i: (runs["started_unix"][i], i))
        elif args.run in run_ids:
            k = run_ids.index(args.run)
        else:
            print(f"no run {args.run!r} in the store (runs: {', '.join(run_ids)})", file=sys.stderr)
            return 1
        run = runs[k]
        run_id = run_ids[k]
        tasks_total = int(run["tasks_total"])

        # A run's rows lie in [results_first_row, next run's results_first_row).
        lo = int(run["results_first_row"])
        hi = int(runs["results_first_row"][k + 1]) if k + 1 < len(runs) else len(results)
        window = results[lo:hi]
        mask = np.array([text(r) == run_id for r in window["run_id"]], dtype=bool)
        rows = lo + np.nonzero(mask)[0]
        mine = window[mask]
        elsewhere = sum(1 for i, r in enumerate(results["run_id"]) if text(r) == run_id and not lo <= i < hi)
        if elsewhere:
            problems.append(f"{elsewhere} rows of the run lie outside [{lo}, {hi})")

        finals = mine[mine["final"] == 1]
        per_task = {}
        for t in finals["task_index"]:
            per_task[int(t)] = per_task.get(int(t), 0) + 1
        dup = sorted(t for t, n in per_task.items() if n > 1)
        missing = sorted(set(range(tasks_total)) - set(per_task))
        extra = sorted(t for t in per_task if t >= tasks_total)
        if dup:
            problems.append(f"tasks with more than one final result: {dup[:20]}")
        if missing:
            problems.append(f"tasks without a final result: {missing[:20]} ({len(missing)} in all)")
        if extra:
            problems.append(f"final results for task indexes beyond tasks_total {tasks_total}: {extra[:20]}")
        if len(finals) != args.expect_final:
            problems.append(f"{len(finals)} final results, expected {args.expect_final}")

        statuses = {}
        for s in finals["status"]:
            statuses[text(s)] = statuses.get(text(s), 0) + 1
        for s in statuses:
            if s not in STATUSES:
                problems.append(f"unknown status {s!r}")

        sample_rows = 0
        for row_index, r in zip(rows, mine):
            off, cnt = int(r["samples_offset"]), int(r["samples_count"])
            if off + cnt > len(samples):
                problems.append(f"row {row_index}: samples slice [{off}, {off + cnt}) beyond {len(samples)}")
                continue
            if cnt != int(r["sample_count"]):
                problems.append(f"row {row_index}: samples_count {cnt} != sample_count {r['sample_count']}")
            if cnt:
                sample_rows += 1
                s = samples[off:off + cnt]
                want = {
                    "latency_p50_s": np.percentile(s, 50), "latency_p90_s": np.percentile(s, 90),
                    "latency_p99_s": np.percentile(s, 99), "latency_mean_s": s.mean(),
                    "latency_min_s": s.min(), "latency_max_s": s.max(),
                    "latency_stddev_s": s.std(ddof=1) if cnt > 1 else 0.0,
                }
                for col, v in want.items():
                    if not close(float(r[col]), float(v)):
                        problems.append(f"row {row_index}: {col} {r[col]!r} != numpy {v!r}")
            moff, mcnt = int(r["metrics_offset"]), int(r["metrics_count"])
            if moff + mcnt > len(metrics):
                problems.append(f"row {row_index}: metrics slice beyond {len(metrics)}")
            elif mcnt and not all(int(m) == row_index for m in metrics["result_row"][moff:moff + mcnt]):
                problems.append(f"row {row_index}: metrics rows point elsewhere")

        summary = {
            "store": args.store,
            "mode": mode,
            "run_id": run_id,
            "run_status": text(run["status"]),
            "runs": len(runs),
            "result_rows": int(len(results)),
            "run_rows": int(len(mine)),
            "final": int(len(finals)),
            "tasks_total": tasks_total,
            "statuses": statuses,
            "flaky": int(finals["flaky"].sum()) if len(finals) else 0,
            "samples": int(len(samples)),
            "rows_with_samples": sample_rows,
            "metrics": int(len(metrics)),
            "ok": not problems,
        }
        print(json.dumps(summary, sort_keys=True))
    if problems:
        for p in problems[:50]:
            print(p, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
