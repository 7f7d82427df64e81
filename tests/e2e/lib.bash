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
