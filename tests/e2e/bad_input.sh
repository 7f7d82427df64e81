#!/usr/bin/env bash
# Bad input never crashes: each case exits 2 with a message naming the file (and line) or flag,
# and nothing already recorded is lost.
source "$(dirname "$0")/lib.bash"
DATA="$IPFSA_SOURCE_DIR/tests/data/campaigns"

n=0
for f in "$DATA"/bad_*.yaml; do
  base=$(basename "$f")
  # The message names the file holding the mistake (the file itself, or a fragment it includes).
  expect_exit 2 "\.yaml:[0-9]+:[0-9]+: " -- "$IPFSA_BIN" validate "$f"
  echo "validate $base: $(head -c 160 err.txt)"
  n=$((n + 1))
done
[ "$n" -ge 8 ] || fail "expected at least 8 malformed campaign samples, found $n"
expect_exit 2 "nope.yaml" -- "$IPFSA_BIN" validate "$WORK/nope.yaml"

# Under mpirun: the coordinator reports the file and line, the run exits 2 (through `launch`,
# which returns rank 0's exit code), no rank hangs.
expect_exit 2 "bad_unknown_key.yaml:[0-9]+:[0-9]+: " -- "$IPFSA_BIN" launch -n 4 -- "$DATA/bad_unknown_key.yaml" --out out --store trends.h5

# Wrong flags and values.
expect_exit 2 "--no-such-flag" -- "$IPFSA_BIN" run --no-such-flag
expect_exit 2 "prefetch" -- "$IPFSA_BIN" run --prefetch 0
expect_exit 2 "coordinators" -- "$IPFSA_BIN" run --coordinators 3
expect_exit 2 "[Ss]ubcommand|required" -- "$IPFSA_BIN"
expect_exit 2 "this-is-not-a-flag" -- "$IPFSA_BIN" launch -n 2 -- --out out1 --store one.h5 --this-is-not-a-flag
expect_exit 2 "at least 2 MPI ranks" -- "$IPFSA_BIN" run --out out1 --store one.h5

# Corrupt and foreign stores: a clean error naming the file; the file is left as it was.
head -c 4096 /dev/urandom > corrupt.h5
sum_before=$(sha256sum corrupt.h5)
expect_exit 2 "corrupt.h5" -- "$IPFSA_BIN" store show corrupt.h5
expect_exit 2 "corrupt.h5" -- "$IPFSA_BIN" launch -n 2 -- --out out2 --store corrupt.h5
[ "$(sha256sum corrupt.h5)" = "$sum_before" ] || fail "corrupt store was modified"
"$PY" -c 'import h5py; f=h5py.File("foreign.h5","w"); f["x"]=[1,2,3]; f.close()'
expect_exit 2 "foreign.h5.*not an ipfs-accelerate trend store" -- "$IPFSA_BIN" store show foreign.h5
expect_exit 2 "missing.h5" -- "$IPFSA_BIN" store show missing.h5

# A good run, then a bad one against the same store: the recorded run survives.
mpirun_ipfsa 2 run --out good --store keep.h5 > /dev/null 2>&1 || fail "good run failed"
expect_exit 2 "bad_unknown_key.yaml" -- "$IPFSA_BIN" launch -n 2 -- "$DATA/bad_unknown_key.yaml" --out bad --store keep.h5
h5check keep.h5 --expect-final "$(json good/summary.json tasks_total)" --run "$(json good/summary.json run_id)"
echo "PASS"
