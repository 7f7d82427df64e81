# Shared by the e2e tests (sourced). Real mpirun, real HDF5 files, Debian's python3 with h5py.
set -euo pipefail
: "${IPFSA_BIN:?set by CTest}" "${IPFSA_SOURCE_DIR:?set by CTest}"
source "$IPFSA_SOURCE_DIR/scripts/env.sh"
PY=${IPFSA_PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipfsa-e2e.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
# json FILE KEY -> value of a top-level key of a JSON file
json() { "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if not isinstance(v,bool) else int(v))' "$1" "$2"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected $2, got $1"; }
mpirun_ipfsa() { mpirun --enable-recovery -np "$1" "$IPFSA_BIN" "${@:2}"; }
h5check() { "$PY" "$IPFSA_SOURCE_DIR/tests/e2e/store_h5py_check.py" "$@"; }
# store_finals STORE -> final result rows in the store (all runs), read with SWMR while a run is
# writing it; 0 when it cannot be read yet.
store_finals() {
  "$PY" - "$1" <<'PY' 2>/dev/null || echo 0
import sys, h5py
with h5py.File(sys.argv[1], "r", libver="latest", swmr=True) as f:
    r = f["results"]
    r.refresh()
    print(int((r["final"][()] == 1).sum()))
PY
}
# expect_exit CODE PATTERN -- command...: the command exits CODE, its stderr matches PATTERN (ERE)
# and shows no crash. expect_exit_in "out err" ...: the same, PATTERN looked for in stdout too.
expect_exit_in() {
  local streams=$1 code=$2 pattern=$3
  shift 4
  set +e
  "$@" > out.txt 2> err.txt
  local rc=$?
  set -e
  [ "$rc" = "$code" ] || fail "$*: exit $rc, expected $code; stdout: $(cat out.txt) stderr: $(cat err.txt)"
  local files=() s
  for s in $streams; do files+=("$s.txt"); done
  cat "${files[@]}" | grep -Eq -- "$pattern" || fail "$*: $streams do not match /$pattern/: $(cat "${files[@]}")"
  if grep -Eq "Segmentation|Aborted|terminate called|internal error" err.txt; then fail "$*: crashed: $(cat err.txt)"; fi
}
expect_exit() { expect_exit_in err "$@"; }
