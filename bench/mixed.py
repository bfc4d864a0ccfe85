"""Section `mixed` of bench/run: `leakdiff record --native` of a Python
program (issue 12), called by suite.py with its helpers.

1. The allocation-heavy Python workload (bench/workload.py), side by side:
   uninstrumented, the hooks only (plain `leakdiff record`, exact and
   --sample=512KiB), --native exact and --native --sample=512KiB, and the
   native agent alone on the interpreter (--runtime=native), exact and
   sampled.  CPU is user+sys of the whole tree, so the recorder's
   symbolisation of the native sites at exit is included.
2. One snapshot of a process holding N live Python blocks and N live
   native blocks (bench/mixed_heap.py): the leakdiff.snapshot() call,
   native sites included, and the recorder's whole run.
"""
import gzip
import json
import os


def section(s):
    """s: the suite module (measure, column, table, ...), ARGS set."""
    args = s.ARGS
    py, ld, work = args.python, args.leakdiff, args.work
    n = 10000 if args.quick else 160000
    prog = [os.path.join(args.root, "bench", "workload.py"), "--requests", str(n)]
    snap = os.path.join(work, "mixed-workload.snap")
    print("## 7. Python and native in one snapshot (--native)\n")
    s.note("`bench/workload.py --requests %d` run with `%s`. Every leakdiff column takes its one "
           "snapshot at exit, which is included, and the CPU time is that of the whole process "
           "tree: the recorder's symbolisation of the native sites counts too. `hooks only` is "
           "the default Python recording; `--native` adds the native agent in mixed mode; "
           "`--runtime=native` is the native agent alone on the interpreter (C frames only, "
           "Python's objects from malloc). Load average at start: %s." % (n, py, s.load()))

    def rec(*opts):
        return s.column([ld, "record", "-q", "-o", snap] + list(opts) + ["--", py] + prog,
                        "leakdiff record " + " ".join(opts))

    cols = [
        ("uninstrumented", s.column([py] + prog)),
        ("hooks only (leakdiff record)", rec()),
        ("--native", rec("--native")),
        ("hooks only --sample=512KiB", rec("--sample=512KiB")),
        ("--native --sample=512KiB", rec("--native", "--sample=512KiB")),
        ("--runtime=native", rec("--runtime=native")),
        ("--runtime=native --sample=512KiB", rec("--runtime=native", "--sample=512KiB")),
    ]
    nrep = s.reps(3)
    res, broken = s.round_robin(cols, nrep, lambda name, rep, r: s.progress(
        "mixed rep %d %s: %.1f s wall, %.1f s CPU" % (rep + 1, name, r["wall"], r["cpu"])))
    base = res["uninstrumented"]
    rows, cpu = [], {}
    for name, _ in cols:
        rs = res[name]
        if not rs:
            rows.append([name, "skipped", "", "", "", "", broken.get(name, "").split(": ", 1)[-1]])
            continue
        k = min(len(rs), len(base))
        wr = [rs[i]["wall"] / base[i]["wall"] for i in range(k)]
        cr = [rs[i]["cpu"] / base[i]["cpu"] for i in range(k)]
        cpu[name] = s.med(cr)
        rows.append([name, s.spread([r["wall"] for r in rs], s.fs), s.spread([r["cpu"] for r in rs], s.fs),
                     s.spread(wr, s.fr), s.spread(cr, s.fr), s.fmib(s.med([r["rss_kb"] for r in rs])), ""])
    s.table(["configuration", "wall", "CPU (user+sys)", "wall ratio", "CPU ratio", "peak RSS", "note"],
            rows)

    # -- one snapshot of N + N live blocks --------------------------------------
    nb = 100000 if args.quick else 1000000
    heap = os.path.join(args.root, "bench", "mixed_heap.py")
    out = os.path.join(work, "mixed-heap.json")
    hsnap = os.path.join(work, "mixed-heap.snap")
    hsnap1 = os.path.join(work, "mixed-heap.1.snap")
    times = []

    def heap_run():
        for p in (out, hsnap1):
            if os.path.exists(p):
                os.unlink(p)
        r = s.measure([ld, "record", "-q", "--native", "-o", hsnap, "--", py, heap, str(nb), out])
        # os._exit after the API snapshot: no at-exit snapshot (125), heap.1.snap kept.
        if r["timeout"] or not os.path.exists(out) or not os.path.exists(hsnap1):
            return {"skip": s.describe_failure(r, "leakdiff record --native mixed_heap.py")}
        with open(out) as f:
            r["res"] = json.load(f)
        with gzip.open(hsnap1) as f:
            doc = json.load(f)
        r["elapsed"] = doc["meta"].get("elapsed_ms", 0) / 1000.0
        r["native_blocks"] = doc["totals"].get("native_blocks")
        r["blocks"] = doc["totals"].get("heap_blocks")
        return r

    hres, hbroken = s.round_robin([("mixed heap", heap_run)], s.reps(2))
    hr = hres["mixed heap"]
    print("### One snapshot of %s live Python blocks and %s live native blocks\n" % (s.fint(nb), s.fint(nb)))
    if hr:
        s.table(["what", "time"], [
            ["leakdiff.snapshot() call (wall)", s.spread([r["res"]["snap_s"] for r in hr], s.fs)],
            ["leakdiff.snapshot() call (CPU of the program)", s.spread([r["res"]["snap_cpu_s"] for r in hr], s.fs)],
            ["meta.elapsed_ms (Python part of the document)", s.spread([r["elapsed"] for r in hr], s.fs)],
            ["whole run (build, snapshot, recorder), wall", s.spread([r["wall"] for r in hr], s.fs)],
            ["heap blocks / native blocks in the .snap", "%s / %s" % (s.fint(hr[0]["blocks"]),
                                                                    s.fint(hr[0]["native_blocks"]))],
        ], ["l", "r"])
        times = [r["res"]["snap_s"] for r in hr]
    else:
        s.note("skipped: " + hbroken.get("mixed heap", "?"))

    nat, nats = cpu.get("--native"), cpu.get("--native --sample=512KiB")
    big = s.med(times) if times else None
    s.table(["target", "measured", "met?"], [
        ["--native exact ≤ 2.5× (CPU)", "%s (hooks only %s, --runtime=native %s)"
         % (s.fr(nat), s.fr(cpu.get("hooks only (leakdiff record)")), s.fr(cpu.get("--runtime=native"))),
         "yes" if nat is not None and nat <= 2.5 else "no"],
        ["--native --sample=512KiB ≤ 1.3× (CPU)", "%s (hooks only sampled %s, --runtime=native sampled %s)"
         % (s.fr(nats), s.fr(cpu.get("hooks only --sample=512KiB")),
            s.fr(cpu.get("--runtime=native --sample=512KiB"))),
         "yes" if nats is not None and nats <= 1.3 else "no"],
        ["snapshot of %s Python + %s native live blocks ≤ 2 s" % (s.fint(nb), s.fint(nb)),
         "%s (leakdiff.snapshot() call)" % s.fs(big), "yes" if big is not None and big <= 2 else "no"],
    ], ["l", "l", "l"])
    print("%d repetition(s), %d requests; load average at end: %s\n" % (nrep, n, s.load()))
