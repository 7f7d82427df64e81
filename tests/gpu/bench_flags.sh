#!/usr/bin/env bash
# ipfsa_gpu_bench rejects bad flags with exit 2 and a message naming the flag, before it looks for a
# GPU (so this runs everywhere). Usage: bench_flags.sh PATH/TO/ipfsa_gpu_bench
set -u
bench=$1
fail=0
check() {  # expected-substring args...
  local want=$1
  shift
  local err rc
  err=$("$bench" "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 2 || $err != *"$want"* ]]; then
    echo "FAIL: $* -> exit $rc, stderr: $err (wanted exit 2 and '$want')"
    fail=1
  fi
}
check "--bits takes 2, 3, 4 or 8" --bits 5
check "--bits takes a list" --bits two
check "--batch takes a list" --batch 0
check "--shape takes MxK" --shape 4096
check "not a multiple of the group" --shape 64x100
check "--runs must be positive" --runs 0
check "unknown argument '--frob'" --frob
((fail == 0)) && echo PASS
exit $fail
