#!/usr/bin/env bash
# `bench kv` (issue 3): 2-bit KV cache, group 128, no fp16 window: reduction >= 0.855 with the
# metadata counted; bad options exit 2.
source "$(dirname "$0")/lib.bash"
"$IPFSA_BIN" bench kv --bits 2 --tokens 1024 --heads 8 --head-dim 128 --group 128 --json > kv.json
cat kv.json
"$PY" -c '
import json
d = json.load(open("kv.json"))
assert d["reduction"] >= 0.855, d
assert d["bytes"] < d["fp16_bytes"], d
assert 0 < d["cosine"] <= 1.0000001, d'
set +e
"$IPFSA_BIN" bench kv --bits 3 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "exit code for --bits 3"
echo "PASS"
