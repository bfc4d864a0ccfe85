#!/usr/bin/env python3
"""The attach section of bench/run: `leakdiff record --pid` on a Python
process holding a million live objects it allocated before the attach.

    attach.py [--quick] [--reps N] --work DIR --leakdiff PATH --python PY --root DIR [...]

Per repetition, a fresh target (bench/attach.py --target N: N small objects
in a list, a thread asleep in time.sleep, the main thread blocked reading
its stdin) is attached to with `leakdiff record --pid -q`, and timed:

- attach + first snapshot: from starting the recorder to its first file on
  disk (the issue's target: under 2 s for 1M objects);
- last snapshot: from SIGINT to the recorder to the last file on disk;
- detach: from the last file on disk to the agent being gone from the
  target (the recorder exited and the target has no thread more than
  before the attach) (target: under 1 s);

then the target must still answer on its stdin. The anchor, run side by
side in the same repetition: as many live objects built under `leakdiff
record` and snapshotted in-process with leakdiff.snapshot() (bench/heap.py
--build objects), the snapshot leakdiff takes of such a heap without
attaching; the ratio says what attaching costs next to it. Wall seconds,
"median (min-max)".
"""

import argparse
import gzip
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time


def target(n):
    """The process attached to: n live objects allocated before any agent."""
    import threading

    class Item:
        __slots__ = ("v",)

    keep = []
    for i in range(n):
        it = Item()
        it.v = i
        keep.append(it)
    threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        print("alive %d" % len(keep), flush=True)


def tasks(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return -1


def wait_file(path, proc, timeout=120):
    deadline = time.perf_counter() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.perf_counter() > deadline:
            return None
        time.sleep(0.002)
    return time.perf_counter()


def one_attach(args, n, snap):
    for p in (snap, snap[:-5] + ".1.snap"):
        if os.path.exists(p):
            os.unlink(p)
    me = os.path.abspath(__file__)
    t = subprocess.Popen([args.python, me, "--target", str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, universal_newlines=True)
    try:
        if t.stdout.readline().strip() != "ready":
            return {"skip": "the target did not start"}
        base = tasks(t.pid)
        t0 = time.perf_counter()
        rec = subprocess.Popen([args.leakdiff, "record", "-q", "--pid", str(t.pid), "-o", snap],
                               stderr=subprocess.PIPE, universal_newlines=True)
        first = wait_file(snap[:-5] + ".1.snap", rec)
        if first is None:
            rec.wait()
            return {"skip": "no first snapshot: " + rec.stderr.read().strip()[-300:]}
        t1 = time.perf_counter()
        rec.send_signal(signal.SIGINT)
        last = wait_file(snap, rec)
        rec.wait()
        while tasks(t.pid) > base and time.perf_counter() - t1 < 30:
            time.sleep(0.002)
        gone = time.perf_counter()
        if last is None or rec.returncode != 0:
            return {"skip": "no clean detach (%d): %s" % (rec.returncode, rec.stderr.read().strip()[-300:])}
        t.stdin.write("ping\n")
        t.stdin.flush()
        ready, _, _ = select.select([t.stdout], [], [], 10)
        if not ready or not t.stdout.readline().startswith("alive"):
            return {"skip": "the target stopped answering after detach"}
        with gzip.open(snap[:-5] + ".1.snap") as f:
            doc = json.load(f)
        return {"attach": first - t0, "last": last - t1, "detach": gone - last,
                "objects": doc["totals"].get("objects", 0),
                "elapsed": doc["meta"].get("elapsed_ms", 0) / 1000.0}
    finally:
        t.kill()
        t.wait()


def anchor(args, n, work):
    """leakdiff.snapshot() in-process under `leakdiff record`, same heap size."""
    heap = os.path.join(args.root, "bench", "heap.py")
    out = os.path.join(work, "attach-anchor.json")
    snap = os.path.join(work, "attach-anchor.snap")
    if os.path.exists(out):
        os.unlink(out)
    subprocess.run([args.leakdiff, "record", "-q", "-o", snap, "--", args.python, heap, "--build",
                    "objects", "--n", str(n), "--measure", "agent", "--out", out],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not os.path.exists(out):
        return None
    with open(out) as f:
        return json.load(f).get("snap_s")


def spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    return "%.2f s (%.2f-%.2f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--target":
        target(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description="the attach section of bench/run")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--work", required=True)
    ap.add_argument("--leakdiff", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--root", required=True)
    args, _ = ap.parse_known_args()
    n = 100000 if args.quick else 1000000
    reps = args.reps or (1 if args.quick else 3)
    snap = os.path.join(args.work, "attach.snap")
    runs, anchors, why = [], [], None
    for rep in range(reps):
        r = one_attach(args, n, snap)
        if r.get("skip"):
            why = r["skip"]
            break
        runs.append(r)
        anchors.append(anchor(args, n, args.work))
        sys.stderr.write("bench: attach rep %d: attach+first %.2f s, last %.2f s, detach %.2f s, "
                         "anchor %s\n" % (rep + 1, r["attach"], r["last"], r["detach"], anchors[-1]))
    print("## Attaching to a running Python process\n")
    print("A target holding %s live objects, allocated before the attach (`bench/attach.py`); "
          "%d repetition(s), wall time.\n" % ("{:,}".format(n), len(runs)))
    if why:
        print("_attach section failed: %s_\n" % why)
        sys.exit(1)
    ratios = [r["attach"] / a for r, a in zip(runs, anchors) if a]
    print("| measure | time | target |")
    print("|:---|---:|:---|")
    print("| attach + first snapshot | %s | < 2 s: %s |" % (
        spread([r["attach"] for r in runs]),
        "yes" if n >= 1000000 and statistics.median([r["attach"] for r in runs]) < 2 else "no"))
    print("| of which the snapshot (meta.elapsed_ms) | %s | |" % spread([r["elapsed"] for r in runs]))
    print("| last snapshot (SIGINT to the file) | %s | |" % spread([r["last"] for r in runs]))
    print("| detach (the file to the agent gone) | %s | < 1 s: %s |" % (
        spread([r["detach"] for r in runs]),
        "yes" if statistics.median([r["detach"] for r in runs]) < 1 else "no"))
    print("| anchor: leakdiff.snapshot() in-process, same heap | %s | |" % spread(anchors))
    print("| ratio attach + first snapshot / anchor | %s | |\n" % (
        "%.2f× (%.2f-%.2f)" % (statistics.median(ratios), min(ratios), max(ratios)) if ratios else "—"))


if __name__ == "__main__":
    main()
