"""A heap of N live Python blocks and N live native blocks, for the
snapshot time of `leakdiff record --native` (bench/run --only=mixed).

    leakdiff record --native -- python3 mixed_heap.py N RESULT.json

N small __slots__ instances (one block each on the allocator hooks) and N
blocks of 16 bytes from libc's malloc through ctypes (their addresses kept
in one array.array, a single block), then one timed leakdiff.snapshot():
the time the program is stopped for, native sites included.  The process
leaves with os._exit() right after writing the result, so no at-exit
snapshot follows.
"""
import array
import ctypes
import ctypes.util
import json
import os
import sys
import time

import leakdiff


class Node:
    __slots__ = ("v",)


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    t0 = time.perf_counter()
    nodes = [Node() for _ in range(n)]
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    malloc = libc.malloc
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = (ctypes.c_size_t,)
    kept = array.array("Q", bytes(8 * n))
    for i in range(n):
        kept[i] = malloc(16)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    c0 = time.process_time()
    seq = leakdiff.snapshot("mixed")
    snap = time.perf_counter() - t0
    snap_cpu = time.process_time() - c0
    with open(out, "w") as f:
        json.dump({"build_s": build, "snap_s": snap, "snap_cpu_s": snap_cpu, "seq": seq,
                   "python": len(nodes), "native": len(kept)}, f)
    sys.stdout.flush()
    os._exit(0)


main()
