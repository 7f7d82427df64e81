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
