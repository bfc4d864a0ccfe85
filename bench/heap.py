"""Build a large live heap, then take one census or snapshot of it and time it.

    python3 [-X tracemalloc=16] heap.py --build blocks|objects --n N
                                        --measure METHOD --out RESULT.json

--build blocks   about N live traced blocks (N small __slots__ instances,
                 one block each, plus the list holding them), allocated at the bottom of a 16-level recursion whose
                 two call sites per level give ~N/64 distinct tracebacks.
--build objects  about N live objects: N/5 tuples (int, str, float, list),
                 of which only the tuple and the list are tracked by the
                 collector.

--measure
  none         nothing: the cost of building the heap (whole-run baseline)
  tracemalloc  tracemalloc.take_snapshot(), then .statistics("traceback")
               (run with -X tracemalloc=16; the heap is built traced)
  gccount      type counting over gc.get_objects() (tracked objects only)
  census       gc.get_objects() plus the untracked objects they refer to
               (ints, strs, floats...), counted by type: what a census that
               includes atoms must at least do
  objgraph     objgraph.show_growth() (its first call counts everything);
               uses the Debian package python3-objgraph when present
  agent        leakdiff.snapshot() under `leakdiff record`: the agent's
               whole snapshot (collection, census, sites, encoding, pipe);
               the phase timings of its builder are copied into the result
  traces       _tracemalloc._get_traces() and dropping its list: the one
               call every tracemalloc-based snapshot must make, so the floor
               of the agent's snapshot (run with -X tracemalloc=16)

Every method but none and objgraph is preceded by a timed gc.collect(), as
the agent runs one before its census.  The process leaves with os._exit()
right after writing the result, so no method pays for tearing the heap
down (and the agent takes no second snapshot at exit).

The result file gets one JSON object: build_s, gc_s, snap_s (wall seconds
of the measured call), snap_cpu_s (process CPU seconds), stats_s (the
statistics() call, tracemalloc only), live (objects or blocks built),
and for the agent its phases.
"""

import argparse
import gc
import json
import os
import sys
import time


class Node:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


BATCH = 64


def _alloc(out, n):
    for j in range(n):
        out.append(Node(j & 0xFF))     # a cached small int: one block per Node


def _descend(k, path, out, n):
    # Two call sites per level: which one is taken depends on bit k of path,
    # so the innermost 16 frames tell up to 2**15 paths apart.
    if k == 0:
        _alloc(out, n)
    elif (path >> k) & 1:
        _descend(k - 1, path, out, n)
    else:
        _descend(k - 1, path, out, n)


def build_blocks(n):
    out = []
    i = 0
    while i < n:
        path = (i // BATCH * 2654435761) & 0xFFFF
        _descend(15, path, out, min(BATCH, n - i))
        i += BATCH
    return out


def build_objects(n):
    recs = []
    append = recs.append
    for i in range(n // 5):
        append((i + 100000, "key-%d" % i, i * 0.5, []))
    return recs


def count_tracked():
    counts = {}
    get = counts.get
    for o in gc.get_objects():
        t = type(o)
        counts[t] = get(t, 0) + 1
    return counts


def count_with_atoms():
    objs = gc.get_objects()
    counts = {}
    get = counts.get
    seen = set()
    is_tracked = gc.is_tracked
    referents = gc.get_referents
    for o in objs:
        t = type(o)
        counts[t] = get(t, 0) + 1
    for o in objs:
        for r in referents(o):
            if not is_tracked(r):
                i = id(r)
                if i not in seen:
                    seen.add(i)
                    t = type(r)
                    counts[t] = get(t, 0) + 1
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", choices=("blocks", "objects"), required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--measure", required=True,
                    choices=("none", "tracemalloc", "gccount", "census", "objgraph", "agent",
                             "traces"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    res = {"build": args.build, "n": args.n, "measure": args.measure}
    if args.measure == "objgraph":
        try:
            import objgraph
        except ImportError:
            sys.path.append("/usr/lib/python3/dist-packages")
            import objgraph                       # noqa: F811 (ImportError is the skip)
        import io
    if args.measure == "agent":
        import leakdiff
        if not leakdiff.recording():
            sys.stderr.write("heap.py: --measure agent needs `leakdiff record`\n")
            os._exit(3)
    if args.measure in ("tracemalloc", "traces"):
        import tracemalloc
        if not tracemalloc.is_tracing():
            sys.stderr.write("heap.py: --measure tracemalloc needs -X tracemalloc=N\n")
            os._exit(3)

    t0 = time.perf_counter()
    heap = build_blocks(args.n) if args.build == "blocks" else build_objects(args.n)
    res["build_s"] = time.perf_counter() - t0
    res["live"] = len(heap) if args.build == "blocks" else len(heap) * 5

    m = args.measure
    if m not in ("none", "objgraph", "agent"):
        t0 = time.perf_counter()
        gc.collect()
        res["gc_s"] = time.perf_counter() - t0
    c0 = time.process_time()
    t0 = time.perf_counter()
    if m == "tracemalloc":
        snap = tracemalloc.take_snapshot()
        t1 = time.perf_counter()
        stats = snap.statistics("traceback")
        t2 = time.perf_counter()
        res["take_s"] = t1 - t0
        res["stats_s"] = t2 - t1
        res["sites"] = len(stats)
        res["traces"] = len(snap.traces)
        del stats, snap
    elif m == "traces":
        import _tracemalloc
        traces = _tracemalloc._get_traces()
        res["take_s"] = time.perf_counter() - t0
        res["traces"] = len(traces)
        del traces
    elif m == "gccount":
        res["types"] = len(count_tracked())
    elif m == "census":
        res["types"] = len(count_with_atoms())
    elif m == "objgraph":
        buf = io.StringIO()
        objgraph.show_growth(limit=10, file=buf)
        res["objgraph"] = objgraph.__version__
    elif m == "agent":
        seq = leakdiff.snapshot("bench")
        res["seq"] = seq
    t1 = time.perf_counter()
    res["snap_s"] = t1 - t0
    res["snap_cpu_s"] = time.process_time() - c0
    if m == "agent":
        agent = getattr(sys.modules.get("leakdiff._agent"), "_agent", None)
        phases = getattr(getattr(agent, "builder", None), "phases", ())
        try:
            res["phases"] = [[str(name), float(secs)] for name, secs in phases]
        except Exception:
            res["phases"] = []
    with open(args.out, "w") as f:
        json.dump(res, f)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
