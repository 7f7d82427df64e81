"""Peer baseline for the dispatch benchmark: trivial tasks through mpi4py.futures.MPIPoolExecutor.

Run as: mpirun -np 4 python3 -m mpi4py.futures mpi4py_pool.py N CHUNKSIZE
(1 master + 3 workers, the same shape as ipfs-accelerate's 1 coordinator + 3 workers).
Prints one JSON line: {"tasks": N, "chunksize": C, "seconds": S, "tasks_per_s": R}.
"""
import json
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def trivial(i):
    return i


def main():
    n = int(sys.argv[1])
    chunksize = int(sys.argv[2])
    with MPIPoolExecutor() as pool:
        # Warm up: make sure every worker is spawned and connected before timing.
        list(pool.map(trivial, range(64), chunksize=1))
        t0 = time.perf_counter()
        total = sum(pool.map(trivial, range(n), chunksize=chunksize))
        dt = time.perf_counter() - t0
    assert total == n * (n - 1) // 2
    print(json.dumps({"tasks": n, "chunksize": chunksize, "seconds": dt, "tasks_per_s": n / dt}))


if __name__ == "__main__":
    main()
