#!/usr/bin/env python3
"""The measuring half of bench/run: one section per call, Markdown on stdout.

    suite.py SECTION [--quick] [--reps N] --work DIR --bin DIR
             --leakdiff PATH --python PY --root DIR

SECTION is python, snapshot, diff, size, native or pytest (see bench/run).  Every
command runs under `/usr/bin/time -f %M` (its peak RSS: for a tree of
processes, the largest single one), started with Popen and reaped with
os.wait4(), which gives the CPU time (user + sys of the command and every
descendant it waited for); wall time is perf_counter around it.

Columns of one table are run round-robin within each repetition, so that a
burst of load from other tenants of the machine hits all of them alike;
ratios are computed within a repetition and then summarised.  Summaries are
"median (min-max)" over the repetitions.
"""

import argparse
import glob
import gzip
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ARGS = None
DEVNULL = subprocess.DEVNULL


# -- measuring ---------------------------------------------------------------

def measure(cmd, env=None, cwd=None, stdout=DEVNULL, timeout=1800):
    """Run cmd once; returns dict(wall, user, sys, cpu, rss_kb, rc, timeout)."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    # /usr/bin/time reports the peak RSS (%M) of the command alone: ru_maxrss
    # as wait4() sees it here would include this Python process, copied by
    # fork() before the exec.  CPU comes from wait4() on /usr/bin/time,
    # which includes its child, in microseconds rather than time's 10 ms.
    rss_file = os.path.join(ARGS.work, ".rss.%d" % os.getpid())
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file] + list(cmd),
                            env=full_env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE,
                            start_new_session=True)
    # stderr is drained by a thread so a chatty tool cannot block on a full pipe.
    err_chunks = []

    def drain():
        for chunk in iter(lambda: proc.stderr.read(65536), b""):
            if sum(map(len, err_chunks)) < 1 << 16:
                err_chunks.append(chunk)

    import threading
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    timed_out = [False]

    def kill():
        timed_out[0] = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)     # the group we started
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _pid, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(5)
    proc.stderr.close()
    rss = None
    try:
        with open(rss_file) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        os.unlink(rss_file)
        rss = int(lines[-1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime,
        "cpu": ru.ru_utime + ru.ru_stime, "rss_kb": rss,
        "rc": proc.returncode, "timeout": timed_out[0],
        "stderr": b"".join(err_chunks).decode(errors="replace"),
    }


def failed(r, ok=(0,)):
    return r["timeout"] or r["rc"] not in ok


def column(cmd, what=None):
    """A table column that runs cmd once per call; a failed run becomes a
    skip note naming `what` (by default the start of the command)."""
    def fn():
        r = measure(cmd)
        if failed(r):
            return {"skip": describe_failure(r, what or shlex.join(cmd[:3]) + " ...")}
        return r
    return fn


def describe_failure(r, what):
    if r["timeout"]:
        return "%s: timed out" % what
    last = [l for l in r["stderr"].splitlines() if l.strip()][-3:]
    return "%s: exit %d: %s" % (what, r["rc"], " / ".join(last) or "(no message)")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt(xs[0])
    return "%s (%s–%s)" % (fmt(statistics.median(xs)), fmt(min(xs)), fmt(max(xs)))


def fs(x):
    """Seconds."""
    if x is None:
        return "n/a"
    if x < 0.001:
        return "%.0f µs" % (x * 1e6)
    if x < 1:
        return "%.0f ms" % (x * 1e3)
    if x < 10:
        return "%.2f s" % x
    return "%.1f s" % x


def fr(x):
    return "n/a" if x is None else ("%.2f×" % x if x < 10 else "%.1f×" % x)


def fmib(kb):
    return "n/a" if kb is None else "%.0f MiB" % (kb / 1024.0) if kb >= 10240 else "%.1f MiB" % (kb / 1024.0)


def fint(n):
    return "{:,}".format(int(n))


def table(headers, rows, align=None):
    out = ["| " + " | ".join(headers) + " |"]
    text_columns = ("note", "detail", "measured", "met?", "growth from the previous size")
    align = align or (["l"] + ["l" if h in text_columns else "r" for h in headers[1:]])
    out.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    print("\n".join(out))
    print()


def note(text):
    print("> " + text)
    print()


def reps(full):
    if ARGS.reps:
        return ARGS.reps
    return 1 if ARGS.quick else full


def load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def round_robin(columns, n, per_run=None):
    """columns: [(name, callable -> result dict[, most runs])]; returns
    ({name: [results]}, {name: why it was dropped}).  A column whose run
    fails is dropped from the later repetitions."""
    results = {c[0]: [] for c in columns}
    broken = {}
    for rep in range(n):
        for col in columns:
            name, fn = col[0], col[1]
            if name in broken or (len(col) > 2 and rep >= col[2]):
                continue
            r = fn()
            if r.get("skip"):
                broken[name] = r["skip"]
                continue
            results[name].append(r)
            if per_run:
                per_run(name, rep, r)
    return results, broken


def progress(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# -- 1. Python workload overhead ---------------------------------------------

def section_python():
    py, ld, work = ARGS.python, ARGS.leakdiff, ARGS.work
    # ~2 s uninstrumented; at depth 16 each instrumented run is ~30x that.
    n = 10000 if ARGS.quick else 160000
    prog = [os.path.join(ARGS.root, "bench", "workload.py"), "--requests", str(n)]
    snap = os.path.join(work, "workload.snap")
    print("## 1. Python workload overhead\n")
    note("`bench/workload.py --requests %d` (dicts, lists, small class instances, strings; "
         "leaks one response in 50 and a profile cache) run with `%s`. "
         "tracemalloc columns start tracemalloc at start-up and never take a snapshot; "
         "`leakdiff record` (default depth 16) records every allocation on the allocator hooks "
         "(C extension `_sampler`) and takes its one snapshot at exit, which is included; so do "
         "`--tracemalloc`, which records with tracemalloc instead, and `--sample=512KiB`, which "
         "samples on the hooks. Load average at start: %s." % (n, py, load()))
    elapsed = []

    def leakdiff_run():
        r = measure([ld, "record", "-q", "-o", snap, "--", py] + prog)
        if failed(r):
            return {"skip": describe_failure(r, "leakdiff record")}
        try:
            with gzip.open(snap) as f:
                elapsed.append(json.load(f)["meta"].get("elapsed_ms"))
        except Exception:
            pass
        return r

    sampled_name = "leakdiff record --sample=512KiB (Python sampled mode)"
    sampled_elapsed = []

    def sampled_run():
        r = measure([ld, "record", "-q", "--sample=512KiB", "-o", snap + ".s", "--", py] + prog)
        if failed(r):
            return {"skip": describe_failure(r, "leakdiff record --sample")}
        try:
            with gzip.open(snap + ".s") as f:
                meta = json.load(f)["meta"]
            if not meta.get("sample"):
                return {"skip": "the agent tracked exactly (no sampler for this interpreter)"}
            sampled_elapsed.append(meta.get("elapsed_ms"))
        except Exception:
            pass
        return r

    cols = [
        ("uninstrumented", column([py] + prog)),
        ("leakdiff record (depth 16)", leakdiff_run),
        ("leakdiff record --tracemalloc (depth 16)",
         column([ld, "record", "-q", "--tracemalloc", "-o", snap + ".t", "--", py] + prog)),
        (sampled_name, sampled_run),
        ("python3 -X tracemalloc=1", column([py, "-X", "tracemalloc=1"] + prog)),
        ("python3 -X tracemalloc=16", column([py, "-X", "tracemalloc=16"] + prog)),
        # For reference: the native agent's malloc hook on the interpreter
        # (C-level sites only, no Python lines): what a hook costs exact and sampled.
        ("ref: leakdiff record --runtime=native (interpreter's malloc)",
         column([ld, "record", "-q", "--runtime=native", "-o", snap + ".n", "--", py] + prog)),
        ("ref: leakdiff record --runtime=native --sample=512KiB",
         column([ld, "record", "-q", "--runtime=native", "--sample=512KiB", "-o", snap + ".ns", "--", py]
                + prog)),
    ]
    nrep = reps(3)
    res, broken = round_robin(cols, nrep, lambda name, rep, r: progress(
        "python rep %d %s: %.1f s wall, %.1f s CPU" % (rep + 1, name, r["wall"], r["cpu"])))
    base = res["uninstrumented"]
    rows = []
    for name, _ in cols:
        rs = res[name]
        if name in broken and not rs:
            rows.append([name, "skipped", "", "", "", "", broken[name].split(": ", 1)[-1]])
            continue
        k = min(len(rs), len(base))
        wr = [rs[i]["wall"] / base[i]["wall"] for i in range(k)]
        cr = [rs[i]["cpu"] / base[i]["cpu"] for i in range(k)]
        rows.append([name, spread([r["wall"] for r in rs], fs), spread([r["cpu"] for r in rs], fs),
                     spread(wr, fr), spread(cr, fr), fmib(med([r["rss_kb"] for r in rs])),
                     ("snapshot at exit: %s" % spread([e / 1000.0 for e in elapsed if e], fs))
                     if name.startswith("leakdiff record (") and elapsed else
                     ("snapshot at exit: %s" % spread([e / 1000.0 for e in sampled_elapsed if e], fs))
                     if name == sampled_name and sampled_elapsed else ""])
    table(["configuration", "wall", "CPU (user+sys)", "wall ratio", "CPU ratio", "peak RSS", "note"],
          rows)
    cpu = {name: med([res[name][i]["cpu"] / base[i]["cpu"]
                      for i in range(min(len(res[name]), len(base)))]) for name, _ in cols if res[name]}
    lr = cpu.get("leakdiff record (depth 16)")
    sr = cpu.get(sampled_name)
    if sr is not None:
        sampled_row = ["Python sampled mode ≤ 1.5× (CPU)", "%s CPU" % fr(sr), "yes" if sr <= 1.5 else "no"]
    else:
        sampled_row = ["Python sampled mode ≤ 1.5× (CPU)",
                       "not implemented: " + broken.get(sampled_name, "?").split(": ", 1)[-1], "no"]
    tm16 = cpu.get("python3 -X tracemalloc=16")
    table(["target", "measured", "met?"], [
        sampled_row,
        ["Python exact mode no slower than tracemalloc at the same depth (CPU)",
         "%s CPU, snapshot at exit included (tracemalloc=16 alone: %s; --tracemalloc: %s)"
         % (fr(lr), fr(tm16), fr(cpu.get("leakdiff record --tracemalloc (depth 16)"))),
         "yes" if lr is not None and tm16 is not None and lr <= tm16 else "no"],
    ], ["l", "l", "l"])
    print("%d repetition(s), %d requests; %s\n" % (nrep, n, "load average at end: " + load()))


# -- 2. snapshot time ----------------------------------------------------------

PHASE_ORDER = ["census.group", "census.untracked", "census.sizes", "type_sites", "hints",
               "paths", "sites", "resolve", "document"]


def objgraph_available(py):
    probe = ("import sys\ntry:\n import objgraph\nexcept ImportError:\n"
             " sys.path.append('/usr/lib/python3/dist-packages')\n import objgraph\n"
             "print(objgraph.__version__)")
    r = subprocess.run([py, "-c", probe], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def section_snapshot():
    py, ld, work = ARGS.python, ARGS.leakdiff, ARGS.work
    heap = os.path.join(ARGS.root, "bench", "heap.py")
    out = os.path.join(work, "heap-result.json")
    snap = os.path.join(work, "heap.snap")
    snap1 = os.path.join(work, "heap.1.snap")
    cases = [("blocks", 100000 if ARGS.quick else 1000000),
             ("objects", 500000 if ARGS.quick else 5000000)]
    if ARGS.snapshot_sizes:
        b, o = ARGS.snapshot_sizes.split(",")
        cases = [("blocks", int(b)), ("objects", int(o))]
    og = objgraph_available(py)
    print("## 2. Snapshot time on a large heap\n")
    note("`bench/heap.py` builds the heap, runs a timed `gc.collect()` (except for objgraph, "
         "which runs its own, and the agent, which runs one inside its snapshot), then times one "
         "census or snapshot in-process (`snapshot`); `whole run` is the process from start to "
         "`os._exit` right after, heap building included (built under tracemalloc depth 16 for "
         "the tracemalloc and `--tracemalloc` columns; the default leakdiff column builds it under the agent's allocator hooks). For leakdiff, `snapshot` is the "
         "`leakdiff.snapshot()` call (collection, census, sites, JSON encoding, pipe) and "
         "`meta.elapsed_ms` the part the agent reports in the .snap. Load average at start: %s."
         % load())
    if not og:
        note("objgraph column skipped: `import objgraph` fails (apt-get install python3-objgraph). "
             "pympler: not packaged for Debian 12 and PyPI is out of reach, so no column.")
    else:
        note("objgraph %s (Debian python3-objgraph, imported from /usr/lib/python3/dist-packages); "
             "pympler has no Debian package and PyPI is out of reach, so no pympler column." % og)
    nrep = reps(2)
    summary = {}
    for kind, n in cases:
        phases = {}

        def inproc(method, pre=()):
            def fn():
                if os.path.exists(out):
                    os.unlink(out)
                r = measure([py] + list(pre) + [heap, "--build", kind, "--n", str(n),
                                                 "--measure", method, "--out", out])
                if failed(r):
                    return {"skip": describe_failure(r, method)}
                with open(out) as f:
                    r["res"] = json.load(f)
                return r
            return fn

        def agent_col(opts=(), timed=True):
            return lambda: agent(opts, timed)

        def agent(opts, timed):
            for p in (out, snap, snap1):
                if os.path.exists(p):
                    os.unlink(p)
            r = measure([ld, "record", "-q", "-o", snap] + list(opts) + ["--", py, heap, "--build", kind,
                         "--n", str(n), "--measure", "agent", "--out", out])
            # heap.py leaves with os._exit after its API snapshot, so the recorder
            # reports "no at-exit snapshot" (125) but keeps heap.1.snap.
            if r["timeout"] or not os.path.exists(out) or not os.path.exists(snap1):
                return {"skip": describe_failure(r, "leakdiff record")}
            with open(out) as f:
                r["res"] = json.load(f)
            with gzip.open(snap1) as f:
                doc = json.load(f)
            r["elapsed"] = doc["meta"].get("elapsed_ms", 0) / 1000.0
            r["sites"] = len(doc.get("sites", []))
            r["objects"] = doc.get("totals", {}).get("objects")
            r["blocks"] = doc.get("totals", {}).get("heap_blocks")
            for name, secs in r["res"].get("phases", []) if timed else ():
                phases.setdefault(name, []).append(secs)
            return r

        # statistics("traceback") over millions of traces takes minutes: one
        # run of that column is enough from 2M live objects up.
        tm_cap = 1 if n >= 2000000 else nrep
        cols = [("uninstrumented (build only)", inproc("none")),
                ("tracemalloc take_snapshot + statistics('traceback')",
                 inproc("tracemalloc", ["-X", "tracemalloc=16"]), tm_cap),
                ("floor: _tracemalloc._get_traces() + dropping its list",
                 inproc("traces", ["-X", "tracemalloc=16"])),
                ("gc.get_objects() type count", inproc("gccount")),
                ("gc.get_objects() + untracked referents", inproc("census"))]
        if og:
            cols.append(("objgraph.show_growth()", inproc("objgraph")))
        cols.append(("leakdiff agent (leakdiff.snapshot)", agent_col()))
        if kind == "blocks":
            # The same snapshot with the traces taken from tracemalloc.
            cols.append(("leakdiff agent --tracemalloc (leakdiff.snapshot)",
                         agent_col(["--tracemalloc"], False)))
        progress("snapshot %s n=%d" % (kind, n))
        res, broken = round_robin(cols, nrep, lambda name, rep, r: progress(
            "snapshot %s rep %d %s: whole %.1f s, snapshot %.2f s" % (
                kind, rep + 1, name, r["wall"], r["res"].get("snap_s", 0))))
        print("### %s live %s\n" % (fint(n), "traced blocks, depth 16" if kind == "blocks" else "objects"))
        rows = []
        for col in cols:
            name = col[0]
            rs = res[name]
            if not rs:
                rows.append([name, "skipped: " + broken.get(name, "?"), "", "", "", "", "", ""])
                continue
            snap_s = [r["res"].get("snap_s") for r in rs]
            extra = ""
            if name.startswith("floor"):
                extra = "_get_traces() %s; %s traces" % (
                    spread([r["res"].get("take_s") for r in rs], fs),
                    fint(rs[0]["res"].get("traces", 0)))
            elif "tracemalloc" in name and not name.startswith("leakdiff"):
                extra = "%stake_snapshot %s, statistics %s; %s traces, %s sites" % (
                    "%d run: " % len(rs) if len(rs) < nrep else "",
                    spread([r["res"].get("take_s") for r in rs], fs),
                    spread([r["res"].get("stats_s") for r in rs], fs),
                    fint(rs[0]["res"].get("traces", 0)), fint(rs[0]["res"].get("sites", 0)))
            elif name.startswith("leakdiff"):
                extra = "meta.elapsed_ms %s; %s sites, %s objects, %s blocks in the .snap" % (
                    spread([r["elapsed"] for r in rs], fs), fint(rs[0]["sites"]),
                    fint(rs[0]["objects"] or 0), fint(rs[0]["blocks"] or 0))
            rows.append([name,
                         "—" if name.startswith("uninstrumented") else spread(snap_s, fs),
                         "—" if name.startswith("uninstrumented") else
                         spread([r["res"].get("snap_cpu_s") for r in rs], fs),
                         spread([r["res"].get("gc_s") for r in rs], fs) if rs[0]["res"].get("gc_s") else "—",
                         spread([r["res"].get("build_s") for r in rs], fs),
                         spread([r["wall"] for r in rs], fs), fmib(med([r["rss_kb"] for r in rs])),
                         extra])
        table(["method", "snapshot", "snapshot CPU", "gc.collect", "heap build", "whole run",
               "peak RSS", "detail"], rows)
        if phases:
            prow = [[p, spread(phases[p], fs)] for p in PHASE_ORDER if p in phases]
            prow += [[p, spread(v, fs)] for p, v in phases.items() if p not in PHASE_ORDER]
            total = [sum(v[i] for v in phases.values() if i < len(v)) for i in range(nrep)]
            prow.append(["**sum of phases**", spread(total, fs)])
            ag = res.get("leakdiff agent (leakdiff.snapshot)") or []
            if ag:
                outside = [r["res"]["snap_s"] - r["elapsed"] for r in ag]
                prow.append(["outside elapsed_ms (gc.collect, JSON encoding, pipe)", spread(outside, fs)])
            print("Agent phases (`Builder.phases`, median of %d):\n" % nrep)
            table(["phase", "time"], prow)
        summary[kind] = (n, res, phases)
    # targets
    rows = []
    n, res, phases = summary.get("blocks", (0, {}, {}))
    ag = res.get("leakdiff agent (leakdiff.snapshot)") if res else None
    if ag:
        e = med([r["elapsed"] for r in ag])
        s = med([r["res"]["snap_s"] for r in ag])
        rows.append(["snapshot of 1M live blocks, depth 16 < 1 s",
                     "%s blocks: elapsed_ms %s, whole call %s" % (fint(n), fs(e), fs(s))
                     + ("" if n == 1000000 else " (smaller heap than the target's)"),
                     "yes" if s < 1.0 and n >= 1000000 else "no"])
    n, res, phases = summary.get("objects", (0, {}, {}))
    if phases:
        cen = [sum(phases.get(p, [0] * nrep)[i] for p in ("census.group", "census.untracked", "census.sizes")
                   if i < len(phases.get(p, []))) for i in range(nrep)]
        c = med(cen)
        rows.append(["census of 5M objects < 0.5 s",
                     "%s objects: census phases %s" % (fint(n), fs(c))
                     + ("" if n == 5000000 else " (smaller heap than the target's)"),
                     "yes" if c < 0.5 and n >= 5000000 else "no"])
    if rows:
        table(["target", "measured", "met?"], rows, ["l", "l", "l"])
    print("%d repetition(s); load average at end: %s\n" % (nrep, load()))


# -- 3. diff time and memory ---------------------------------------------------

def gensnap_version():
    path = os.path.join(ARGS.root, "bench", "gensnap.py")
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()[:10]


def snap_pair(n):
    """Generate (or reuse) the synthetic pair for n sites; returns (a, b, info)."""
    d = os.path.join(ARGS.work, "snaps")
    os.makedirs(d, exist_ok=True)
    tag = "%d-d16-%s" % (n, gensnap_version())
    a = os.path.join(d, "a-%s.snap" % tag)
    b = os.path.join(d, "b-%s.snap" % tag)
    info_path = os.path.join(d, "info-%s.json" % tag)
    if not (os.path.exists(a) and os.path.exists(b) and os.path.exists(info_path)):
        progress("generating %d-site snapshots" % n)
        t0 = time.perf_counter()
        r = subprocess.run([ARGS.python, os.path.join(ARGS.root, "bench", "gensnap.py"),
                            "--sites", str(n), a, b], capture_output=True, text=True, check=True)
        info = json.loads(r.stdout)
        info["gen_s"] = time.perf_counter() - t0
        with open(info_path, "w") as f:
            json.dump(info, f)
    with open(info_path) as f:
        return a, b, json.load(f)


def diff_sizes():
    if ARGS.diff_sizes:
        return [int(x) for x in ARGS.diff_sizes.split(",")]
    return [10000, 100000] if ARGS.quick else [10000, 100000, 1000000]


def section_diff():
    ld = ARGS.leakdiff
    floor = os.path.join(ARGS.bin, "floor")
    print("## 3. Diff time and memory\n")
    note("Synthetic pairs from `bench/gensnap.py` (depth 16; 1%% of sites grow, 0.5%% new, "
         "0.5%% gone; up to 5k files, 50k functions, 250k frames shared). `diff` is "
         "`leakdiff diff --format=json --top=10 A B > /dev/null`; `floor` is `bench/floor.c`: "
         "gunzip + cJSON parse of both files, both trees alive at once; `gunzip` is `floor -z`: "
         "gunzip of both files into memory and nothing else, the part no reader can skip; `zcat` "
         "is `zcat A B > /dev/null`. leakdiff reads the two files in two threads, so its wall time "
         "can be below its CPU time. Ratios are taken within a repetition. Load average at start: "
         "%s." % load())
    rows, scale = [], []
    summ, gzc = {}, {}
    nrep = reps(3)
    prev = None
    for n in diff_sizes():
        a, b, info = snap_pair(n)
        cols = []

        cols = [("diff", column([ld, "diff", "--format=json", "--top=10", a, b], "leakdiff diff")),
                ("floor", column([floor, a, b], "floor")),
                ("gunzip", column([floor, "-z", a, b], "gunzip")),
                ("zcat", column(["zcat", a, b], "zcat"))]
        res, broken = round_robin(cols, nrep, lambda name, rep, r: progress(
            "diff %d rep %d %s: %.2f s wall, %.2f s CPU, %d MiB" % (
                n, rep + 1, name, r["wall"], r["cpu"], r["rss_kb"] // 1024)))
        d, fl, gz, z = res["diff"], res["floor"], res["gunzip"], res["zcat"]
        if not d:
            rows.append([fint(n), "failed: " + broken.get("diff", "?")] + [""] * 10)
            continue
        k = min(len(d), len(fl))
        kg = min(len(d), len(gz))
        gr = [d[i]["cpu"] / gz[i]["cpu"] for i in range(kg)]
        cr = [d[i]["cpu"] / fl[i]["cpu"] for i in range(k)]
        wr = [d[i]["wall"] / fl[i]["wall"] for i in range(k)]
        mr = [d[i]["rss_kb"] / fl[i]["rss_kb"] for i in range(k)]
        rows.append([fint(n), spread([r["wall"] for r in d], fs), spread([r["cpu"] for r in d], fs),
                     fmib(med([r["rss_kb"] for r in d])),
                     spread([r["wall"] for r in fl], fs), spread([r["cpu"] for r in fl], fs),
                     fmib(med([r["rss_kb"] for r in fl])), spread([r["cpu"] for r in gz], fs),
                     spread([r["cpu"] for r in z], fs),
                     spread(cr, fr), spread(wr, fr), spread(mr, fr), spread(gr, fr)])
        dc, fc = med([r["cpu"] for r in d]), med([r["cpu"] for r in fl])
        gzc[n] = (med([r["cpu"] for r in gz]), med(gr))
        drss = med([r["rss_kb"] for r in d])
        frss = med([r["rss_kb"] for r in fl])
        summ[n] = (dc, fc, med([r["wall"] for r in d]), med([r["wall"] for r in fl]), drss, frss)
        sites = n + info["sites_b"]
        cur = (n, dc, fc, drss, frss)
        grow = ""
        if prev:
            f = n / prev[0]
            grow = "time ×%.1f, RSS ×%.1f for ×%.0f sites (floor: ×%.1f, ×%.1f)" % (
                dc / prev[1], drss / prev[3], f, fc / prev[2], frss / prev[4])
        scale.append([fint(n), "%.2f µs" % (dc / sites * 1e6), "%.2f µs" % (fc / sites * 1e6),
                      "%.0f B" % (drss * 1024 / sites), "%.0f B" % (frss * 1024 / sites), grow])
        prev = cur
    table(["sites per file", "diff wall", "diff CPU", "diff peak RSS", "floor wall", "floor CPU",
           "floor peak RSS", "gunzip CPU", "zcat CPU", "diff/floor CPU", "diff/floor wall", "diff/floor RSS",
           "diff/gunzip CPU"], rows)
    print("Per-site cost (CPU and peak RSS divided by the sites in both files):\n")
    table(["sites per file", "diff CPU/site", "floor CPU/site", "diff RSS/site", "floor RSS/site",
           "growth from the previous size"], scale)
    # targets (judged on CPU: on an idle machine a single-threaded diff's wall
    # time is its CPU time; on a shared one wall time mostly measures the load)
    t = []
    if summ:
        n = max(summ)
        dc, fc, dw, fw, drss, frss = summ[n]
        small = "" if n >= 1000000 else " (smaller than the target's 1M)"
        t.append(["two 1M-site snapshots diffed < 3 s",
                  "%s sites: %s CPU, %s wall%s" % (fint(n), fs(dc), fs(dw), small),
                  ("yes" if dc < 3 else "no") if not small else "not measured at 1M"])
        t.append(["≤ 2× the gunzip+parse floor", "%s CPU, %s wall, %s peak RSS (%s sites)" % (
            fr(dc / fc), fr(dw / fw), fr(drss / frss), fint(n)), "yes" if dc / fc <= 2 else "no"])
        if n in gzc:
            t.append(["for reference: against gunzip alone", "%s CPU (gunzip of both files: %s CPU)" % (
                fr(gzc[n][1]), fs(gzc[n][0])), "—"])
        sizes = sorted(summ)
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            k = hi / lo
            tg = summ[hi][0] / summ[lo][0]
            mg = summ[hi][4] / summ[lo][4]
            # Fixed costs (start-up, a few MiB of RSS) make small sizes look
            # cheap per site, so compare the two largest sizes as well.
            lo2 = sizes[-2]
            k2 = hi / lo2
            tg2 = summ[hi][0] / summ[lo2][0]
            mg2 = summ[hi][4] / summ[lo2][4]
            linear = tg2 <= k2 * 1.25 and mg2 <= k2 * 1.25
            text = "×%.0f sites (%s→%s): time ×%.1f, RSS ×%.1f" % (k2, fint(lo2), fint(hi), tg2, mg2)
            if lo2 != lo:
                text += "; ×%.0f (%s→%s): time ×%.1f, RSS ×%.1f" % (k, fint(lo), fint(hi), tg, mg)
            t.append(["time and memory linear in sites", text,
                      "yes" if linear else "no (more than 1.25× linear between the two largest)"])
    table(["target", "measured", "met?"], t, ["l", "l", "l"])
    print("%d repetition(s); load average at end: %s\n" % (nrep, load()))


# -- 4. .snap size -------------------------------------------------------------

def member_sizes(path):
    """Compressed size of each top-level member, compressed on its own."""
    with gzip.open(path) as f:
        doc = json.load(f)
    out = {}
    for k, v in doc.items():
        raw = json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()
        out[k] = (len(raw), len(gzip.compress(raw, 6)))
    return doc, out


def section_size():
    print("## 4. .snap size\n")
    rows = []
    for n in diff_sizes():
        a, b, info = snap_pair(n)
        rows.append(["synthetic A, depth 16", fint(n), fint(info["strings"]), fint(info["frames"]),
                     fint(info["a_bytes"]), "%.1f" % (info["a_bytes"] / n),
                     "%.1f" % (info["a_raw_bytes"] / n)])
    # a real recording
    snap = os.path.join(ARGS.work, "leakyapp.snap")
    env = {"PYTHONPATH": os.path.join(ARGS.root, "examples", "python")}
    r = measure([ARGS.leakdiff, "record", "-q", "-o", snap, "--", ARGS.python, "-m", "leakyapp",
                 "--requests", "3000"], env=env, cwd=ARGS.work)
    breakdown = None
    if failed(r):
        rows.append(["leakyapp --requests 3000", describe_failure(r, "record"), "", "", "", "", ""])
    else:
        doc, breakdown = member_sizes(snap)
        ns = len(doc.get("sites", []))
        size = os.path.getsize(snap)
        raw = sum(v[0] for v in breakdown.values())
        rows.append(["real: `leakyapp --requests 3000`", fint(ns), fint(len(doc.get("strings", []))),
                     fint(len(doc.get("frames", []))), fint(size), "%.1f" % (size / max(ns, 1)),
                     "%.1f" % (raw / max(ns, 1))])
    table(["snapshot", "sites", "strings", "frames", "file bytes", "bytes/site (gzip)",
           "bytes/site (JSON)"], rows)
    if breakdown:
        total = sum(v[1] for v in breakdown.values())
        print("Where the real recording's bytes go (each member gzipped on its own; %s in all):\n"
              % fint(total))
        table(["member", "JSON bytes", "gzip bytes", "share"],
              [[k, fint(v[0]), fint(v[1]), "%.0f%%" % (100.0 * v[1] / total)]
               for k, v in sorted(breakdown.items(), key=lambda kv: -kv[1][1])])
    size_against_heaptrack()
    big = max(diff_sizes())
    a, b, info = snap_pair(big)
    per = info["a_bytes"] / big
    table(["target", "measured", "met?"], [
        [".snap ≤ 60 bytes per site at depth 16",
         "%.1f B/site for %s synthetic sites" % (per, fint(big)), "yes" if per <= 60 else "no"]],
        ["l", "l", "l"])


def size_against_heaptrack():
    """The .snap of a recording against heaptrack's file for the same
    program, each at two lengths of run. A snapshot holds the live blocks by
    site, so its size follows the sites; a trace grows with every
    allocation."""
    ld, work, bindir = ARGS.leakdiff, ARGS.work, ARGS.bin
    pyenv = {"PYTHONPATH": os.path.join(ARGS.root, "examples", "python")}
    cases = [("C malloc churn (`-n`)", [os.path.join(bindir, "churn"), "-n"], (500000, 2000000), None),
             ("C++ std::map (`-n`)", [os.path.join(bindir, "mapwork"), "-n"], (250000, 1000000), None),
             ("Python leakyapp (`--requests`)", [ARGS.python, "-m", "leakyapp", "--requests"], (3000, 12000),
              pyenv)]
    snap = os.path.join(work, "size.snap")
    prefix = os.path.join(work, "size.heaptrack")
    have_ht = shutil.which("heaptrack") is not None
    rows = []
    for title, cmd, lengths, env in cases:
        for n in lengths:
            full = cmd + [str(n)]
            progress("size: %s %d" % (title, n))
            r = measure([ld, "record", "-q", "-o", snap, "--"] + full, env=env, cwd=work)
            if failed(r):
                rows.append([title, fint(n), describe_failure(r, "leakdiff record"), "", "", ""])
                continue
            with gzip.open(snap) as f:
                sites = len(json.load(f).get("sites", []))
            snap_bytes = os.path.getsize(snap)
            ht_cell, ratio = "skipped: heaptrack is not installed", ""
            if have_ht:
                for old in glob.glob(prefix + "*"):
                    os.unlink(old)
                h = measure(["heaptrack", "-o", prefix] + full, env=env, cwd=work)
                files = glob.glob(prefix + "*")
                if failed(h) or not files:
                    ht_cell = describe_failure(h, "heaptrack")
                else:
                    ht_bytes = sum(os.path.getsize(f) for f in files)
                    ht_cell, ratio = fint(ht_bytes), "%.0f×" % (ht_bytes / snap_bytes)
            rows.append([title, fint(n), fint(sites), fint(snap_bytes), ht_cell, ratio])
    print("### Against heaptrack's file\n")
    note("The at-exit `.snap` of `leakdiff record` and the file `heaptrack -o` writes (its "
         "compressed trace) for the same program, at two lengths of run each: the longer run "
         "makes four times the allocations.")
    table(["program", "length", ".snap sites", ".snap bytes", "heaptrack file bytes",
           "heaptrack / .snap"], rows)


# -- 5. native ------------------------------------------------------------------

def section_native():
    ld, work, bindir = ARGS.leakdiff, ARGS.work, ARGS.bin
    churn = os.path.join(bindir, "churn")
    mapwork = os.path.join(bindir, "mapwork")
    # About 0.6 s uninstrumented each: shorter runs left the sampled ratios
    # (a few per cent of overhead) at the mercy of scheduling noise.
    ops = 1000000 if ARGS.quick else 6000000
    mops = 500000 if ARGS.quick else 3000000
    workloads = [("C malloc churn, 1 thread", [churn, "-t", "1", "-n", str(ops)]),
                 ("C malloc churn, 2 threads", [churn, "-t", "2", "-n", str(ops)]),
                 ("C++ std::map", [mapwork, "-n", str(mops)])]
    print("## 5. Native programs\n")
    note("`bench/churn.c` (%s malloc/free per thread, 4096-block window, 1 in 1024 kept) and "
         "`bench/mapwork.cpp` (%s inserts/erases in a 20k-entry std::map, 1 in 512 cached forever), "
         "built with -O2 -g. heaptrack writes its zstd trace to the work directory; massif runs "
         "with its defaults. CPU includes every process of the tool (heaptrack's interpreter "
         "too); peak RSS is the largest single process. Load average at start: %s."
         % (fint(ops), fint(mops), load()))
    ht = os.path.join(work, "heaptrack.bench")
    ms = os.path.join(work, "massif.bench")
    ns = os.path.join(work, "native.snap")
    probe = measure([ld, "record", "-q", "-o", ns, "--", churn, "-n", "1000"])
    native_note = None
    if probe["rc"] == 125:
        msg = [l for l in probe["stderr"].splitlines() if l.strip()]
        native_note = "leakdiff column skipped: `leakdiff record -- ./churn` exits 125 (%s)" % (
            msg[-1] if msg else "no message")
    # Each run is under 3 s, and the two-thread runs swing by a third from
    # one to the next (glibc arena contention, a shared 2-core host): more
    # repetitions give a median worth comparing.
    nrep = reps(9)
    for title, cmd in workloads:
        cols = [("uninstrumented", column(cmd, "uninstrumented")),
                ("heaptrack", column(["heaptrack", "-o", ht] + cmd, "heaptrack")),
                ("valgrind --tool=massif", column(["valgrind", "--tool=massif", "--massif-out-file=" + ms]
                                                  + cmd, "massif"))]
        live = []

        def leakdiff_col(c=cmd):
            if os.path.exists(ns):
                os.unlink(ns)
            r = measure([ld, "record", "-q", "-o", ns, "--"] + c)
            if failed(r):
                return {"skip": describe_failure(r, "leakdiff record")}
            try:
                with gzip.open(ns) as f:
                    doc = json.load(f)
                live.append((doc["totals"].get("heap_blocks", 0), doc["totals"].get("heap_bytes", 0),
                             len(doc.get("sites", [])), doc["meta"].get("elapsed_ms")))
            except Exception as exc:
                live.append(None)
                progress("cannot read %s: %r" % (ns, exc))
            return r

        def sampled_col(c=cmd):
            r = measure([ld, "record", "-q", "--sample=512KiB", "-o", ns + ".sampled", "--"] + c)
            if failed(r):
                return {"skip": describe_failure(r, "leakdiff record --sample")}
            return r

        if native_note is None:
            cols.append(("leakdiff record", leakdiff_col))
            cols.append(("leakdiff record --sample=512KiB", sampled_col))
        res, broken = round_robin(cols, nrep, lambda name, rep, r: progress(
            "native %s rep %d %s: %.1f s wall, %.1f s CPU" % (title, rep + 1, name, r["wall"], r["cpu"])))
        base = res["uninstrumented"]
        rows = []
        for name, _ in cols:
            rs = res[name]
            if not rs:
                rows.append([name, "skipped: " + broken.get(name, "?"), "", "", "", "", ""])
                continue
            k = min(len(rs), len(base))
            rows.append([name, spread([r["wall"] for r in rs], fs), spread([r["cpu"] for r in rs], fs),
                         spread([rs[i]["wall"] / base[i]["wall"] for i in range(k)], fr),
                         spread([rs[i]["cpu"] / base[i]["cpu"] for i in range(k)], fr),
                         fmib(med([r["rss_kb"] for r in rs])),
                         ("at-exit snapshot: %s blocks, %s bytes live at %s sites; elapsed_ms %s" % (
                             fint(live[0][0]), fint(live[0][1]), fint(live[0][2]), live[0][3]))
                         if name == "leakdiff record" and live and live[0] else ""])
        if native_note:
            rows.append(["leakdiff record", "skipped", "", "", "", "", ""])
        print("### %s\n" % title)
        table(["tool", "wall", "CPU (user+sys)", "wall ratio", "CPU ratio", "peak RSS", "note"], rows)
    if native_note:
        note(native_note + "; the native agent (agents/native) is being written.")
    else:
        agent_memory(ld, os.path.join(bindir, "keep"), os.path.join(work, "keep.snap"))
    print("%d repetition(s); load average at end: %s\n" % (nrep, load()))


def agent_memory(ld, keep, snap):
    """Anonymous resident memory of a program keeping N live 24-byte blocks,
    plainly and under the exact native agent: the difference over N is the
    agent's cost per live block (its table, sites and buffers included)."""
    rows = []
    for n in range(250000, 2000001, 250000):
        plain = subprocess.run([keep, str(n)], stdout=subprocess.PIPE, universal_newlines=True)
        under = subprocess.run([ld, "record", "-q", "-o", snap, "--", keep, str(n)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
        try:
            a, b = int(plain.stdout.split()[0]), int(under.stdout.split()[0])
        except (IndexError, ValueError):
            rows.append([fint(n), "failed", "", ""])
            continue
        rows.append([fint(n), "%s kB" % fint(a), "%s kB" % fint(b), "%.1f B" % ((b - a) * 1024.0 / n)])
    print("### Agent memory per live block\n")
    note("`bench/keep.c` keeps N blocks of 24 bytes and reports its RssAnon; the agent's live "
         "table has 16-byte slots and grows by half at 3/4 full, so its share per block "
         "saw-tooths between about 21 and 32 bytes as N grows (before, when it doubled: 21 to 43).")
    table(["live blocks", "plain RssAnon", "under leakdiff record", "agent bytes per block"], rows)


# -- attaching to a running native process ---------------------------------------

def attach_fifos(work):
    """The recorder's side of an attachment: a private directory with the
    two FIFOs, the stream drained by a thread. Returns (settings, close)."""
    import threading
    d = tempfile.mkdtemp(prefix="attach.", dir=work)
    ev, rq = os.path.join(d, "events"), os.path.join(d, "requests")
    os.mkfifo(ev, 0o600)
    os.mkfifo(rq, 0o600)
    efd = os.open(ev, os.O_RDONLY | os.O_NONBLOCK)
    rfd = os.open(rq, os.O_RDWR)
    done = threading.Event()

    def drain():
        import select
        while not done.is_set():
            if select.select([efd], [], [], 0.05)[0]:
                try:
                    os.read(efd, 1 << 16)
                except (BlockingIOError, OSError):
                    pass

    t = threading.Thread(target=drain, daemon=True)
    t.start()

    def close():
        done.set()
        t.join(2)
        os.close(efd)
        os.close(rfd)
        shutil.rmtree(d, ignore_errors=True)
    return "out=%s,in=%s,depth=16" % (ev, rq), close


def section_attach():
    ld, work, bindir = ARGS.leakdiff, ARGS.work, ARGS.bin
    prog = os.path.join(bindir, "attachwork")
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(ld))), "agents", "native", "libleakdiff.so")
    ops = 1000000 if ARGS.quick else 4000000
    keeps = [100000, 1000000] if ARGS.quick else [100000, 1000000, 4000000]
    print("## 7. Attaching to a running native process\n")
    note("`bench/attachwork.c`: %s free+malloc pairs of 16..2064 bytes in one thread over a "
         "4096-block window, timed inside the program (so start-up and the at-exit snapshot are "
         "not counted), plainly, under `leakdiff record` (LD_PRELOAD) and with libleakdiff.so "
         "attached to the running program (dlopen + ld_attach_start, as `leakdiff record --pid` "
         "does, FIFOs made and drained here); then KEEP blocks of 24 bytes and, attached, "
         "ld_attach_stop() timed. Load average at start: %s." % (fint(ops), load()))
    if not os.path.exists(lib):
        note("skipped: no %s" % lib)
        return

    def parse(out):
        f = out.split()
        return {f[i]: float(f[i + 1]) for i in range(0, len(f) - 1, 2)}

    def run_plain(keep):
        r = subprocess.run([prog, "-n", str(ops), "-k", str(keep)], stdout=subprocess.PIPE,
                           universal_newlines=True, check=True)
        return parse(r.stdout)

    def run_preload(keep):
        snap = os.path.join(work, "attachwork.snap")
        r = subprocess.run([ld, "record", "-q", "-o", snap, "--", prog, "-n", str(ops), "-k", str(keep)],
                           stdout=subprocess.PIPE, universal_newlines=True, check=True)
        return parse(r.stdout)

    def run_attached(keep):
        settings, close = attach_fifos(work)
        try:
            r = subprocess.run([prog, "-n", str(ops), "-k", str(keep), "-a", lib, settings],
                               stdout=subprocess.PIPE, universal_newlines=True, check=True)
        finally:
            close()
        return parse(r.stdout)

    nrep = reps(3)
    res = {"uninstrumented": [], "leakdiff record (LD_PRELOAD)": [], "attached (libleakdiff.so)": []}
    detach = {k: [] for k in keeps}
    attach_ms = []
    for rep in range(nrep):
        res["uninstrumented"].append(run_plain(0))
        res["leakdiff record (LD_PRELOAD)"].append(run_preload(0))
        a = run_attached(0)
        res["attached (libleakdiff.so)"].append(a)
        attach_ms.append(a["attach_ms"])
        for k in keeps:
            detach[k].append(run_attached(k)["detach_ms"])
        progress("attach rep %d done" % (rep + 1))
    base = res["uninstrumented"]
    rows = []
    for name, rs in res.items():
        rows.append([name, spread([r["work_s"] for r in rs], fs), spread([r["cpu_s"] for r in rs], fs),
                     spread([rs[i]["work_s"] / base[i]["work_s"] for i in range(len(rs))], fr),
                     spread([rs[i]["cpu_s"] / base[i]["cpu_s"] for i in range(len(rs))], fr),
                     spread([(rs[i]["cpu_s"] - base[i]["cpu_s"]) * 1e9 / ops for i in range(len(rs))],
                            lambda x: "%.0f ns" % x)])
    table(["mode", "churn wall", "churn CPU", "wall ratio", "CPU ratio", "CPU added per free+malloc"], rows)
    table(["live blocks when detaching", "ld_attach_stop()"],
          [[fint(k + 4096), spread(detach[k], lambda x: "%.1f ms" % x)] for k in keeps] +
          [["(ld_attach_start, for reference)", spread(attach_ms, lambda x: "%.1f ms" % x)]])
    print("%d repetition(s); load average at end: %s\n" % (nrep, load()))


# -- 6. the pytest plugin ------------------------------------------------------

def pytest_python():
    """An interpreter with pytest: the benchmark's, else Debian's."""
    for py in (ARGS.python, "/usr/bin/python3"):
        if subprocess.run([py, "-c", "import pytest"], stdout=DEVNULL, stderr=DEVNULL).returncode == 0:
            return py
    return None


def section_pytest():
    print("## 6. pytest plugin\n")
    py = pytest_python()
    if py is None:
        note("skipped: no interpreter with pytest (scripts/setup installs python3-pytest)")
        return
    agent = os.path.join(ARGS.root, "agents", "python")
    fixtures = os.path.join(ARGS.root, "tests", "pytest_plugin", "test_clean.py")
    env = {"PYTHONPATH": agent, "LEAKDIFF": ARGS.leakdiff, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "LEAKDIFF_EXT_DIR": os.path.join(os.path.dirname(os.path.dirname(ARGS.leakdiff)),
                                            "agents", "python", "ext")}
    base = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
            os.path.dirname(fixtures), fixtures]
    tracer = []

    def run(extra):
        def fn():
            out = os.path.join(ARGS.work, "pytest.out")
            with open(out, "wb") as f:
                r = measure(base + extra, env=env, cwd=ARGS.work, stdout=f)
            if failed(r):
                return {"skip": describe_failure(r, "pytest " + " ".join(extra))}
            with open(out, errors="replace") as f:
                text = f.read()
            if "(sites from " in text:
                tracer[:] = [text.split("(sites from ", 1)[1].split(")", 1)[0]]
            return r
        return fn

    note("The clean fixture suite `tests/pytest_plugin/test_clean.py` (63 tests) under `%s -m "
         "pytest`, plain and with `--leakdiff` (a warm-up run, then 4 runs, screened on the "
         "allocator hooks after each until one grows nothing; a test where every one grew "
         "something is measured over 4 more runs with a snapshot after each, compared in "
         "memory). Target of issue 16: at most "
         "(4 + 1) x 1.3 = 6.5 times the plain suite. Load average at start: %s." % (py, load()))
    # The plain suite runs without the plugin, which would check the one
    # test its marker selects even without --leakdiff.
    cols = [("plain", run(["-W", "ignore::pytest.PytestUnknownMarkWarning"])),
            ("--leakdiff", run(["-p", "leakdiff.pytest_plugin", "--leakdiff"]))]
    res, broken = round_robin(cols, reps(3))
    rows = []
    for name, _fn in cols:
        rs = res[name]
        if not rs:
            rows.append([name, "n/a", "n/a", "n/a", "n/a", broken.get(name, "")])
            continue
        ratio_w = [r["wall"] / p["wall"] for r, p in zip(rs, res["plain"])]
        ratio_c = [r["cpu"] / p["cpu"] for r, p in zip(rs, res["plain"])]
        rows.append([name, spread([r["wall"] for r in rs], fs), spread(ratio_w, fr),
                     spread([r["cpu"] for r in rs], fs), spread(ratio_c, fr),
                     "sites from %s" % tracer[0] if tracer and name != "plain" else ""])
    table(["run", "wall", "wall ratio", "CPU", "CPU ratio", "note"], rows)

    n = 20000 if ARGS.quick else 200000
    script = os.path.join(ARGS.root, "bench", "pytest_snap.py")
    note("What the plugin does between two runs of a test, in a process with %d live objects "
         "besides the interpreter's; median (range) of %d. On the allocator hooks every checked "
         "test is screened after each run (clean-up, garbage collection of what the frozen heap "
         "gained, the hooks' stacks that changed) until one run grows nothing; only a test where "
         "every screened run grew something is measured with in-process snapshots (clean-up, "
         "full garbage collection, census, then what each kind holds, and the document). "
         "Target of issue 16: under 50 ms between runs." % (n, reps(5)))
    r = subprocess.run([py, script, agent, str(n), str(reps(5))], env=dict(os.environ, **env),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1800)
    if r.returncode != 0:
        note("failed: %s" % r.stderr.strip()[-300:])
        return
    doc = json.loads(r.stdout)
    table(["step", "wall", "CPU", "tracer"],
          [["screen between runs (every checked test, on the hooks; %s stacks)"
            % fint(doc.get("stacks", 0)), spread(doc["screen"], fs),
            spread(doc["screen_cpu"], fs), doc["tracer"] if doc["screen"] else "n/a: no hooks"],
           ["snapshot between runs of a measured test: types and sites", spread(doc["between"], fs),
            spread(doc["between_cpu"], fs), doc["tracer"]],
           ["before a measured test's first run: the same and the hints", spread(doc["first"], fs),
            spread(doc["first_cpu"], fs), doc["tracer"]],
           ["full, with type x site and retention paths (only when something grew every time)",
            spread(doc["full"], fs), spread(doc["full_cpu"], fs), doc["tracer"]]])


def section_mixed():
    # In a file of its own (bench/mixed.py), with this module's helpers.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mixed
    mixed.section(sys.modules[__name__])


def section_html():
    """The HTML report of a diff of two 100k-site snapshots: its size (the
    issue's bound is 10 MB), the time to write it beside the JSON report of
    the same diff, and the time headless Chromium takes from loading the file
    to the page's ready mark (bound: 3 s), through tests/browser/drive.js."""
    ld = ARGS.leakdiff
    n = 100000
    print("## 8. HTML report\n")
    a, b, info = snap_pair(n)
    out = os.path.join(ARGS.work, "report-%d.html" % n)
    with open(out, "wb") as f:
        r = measure([ld, "diff", "--format=html", "--top=10", a, b], stdout=f)
    if failed(r):
        print("_failed: %s_\n" % describe_failure(r, "leakdiff diff --format=html"))
        return
    size = os.path.getsize(out)
    with open(out, encoding="utf-8") as f:
        html = f.read()
    import re
    block = re.search(r'<script type="application/json" id="leakdiff-data">(.*?)</script>', html, re.S).group(1)
    doc = json.loads(block)
    nodes = doc["flame"]["nodes"]
    smaller = sum(1 for row in nodes if re.fullmatch(r"\(\d+ smaller\)", row[1]))
    nrep = reps(3)
    cols = [("html", column([ld, "diff", "--format=html", "--top=10", a, b], "leakdiff diff --format=html")),
            ("json", column([ld, "diff", "--format=json", "--top=10", a, b], "leakdiff diff --format=json"))]
    res, broken = round_robin(cols, nrep, lambda name, rep, r: progress(
        "html %s rep %d: %.2f s wall, %.2f s CPU" % (name, rep + 1, r["wall"], r["cpu"])))
    h, j = res["html"], res["json"]
    k = min(len(h), len(j))
    note("`leakdiff diff --format=html --top=10 A B` on the %s-site pair of section 3 (%s sites in B). "
         "The page: %.2f MB (bound 10 MB), of which the embedded data is %.2f MB and the bundled scripts "
         "and styles %.0f KB; %d flame graph nodes drawn, %d of them \"(N smaller)\" sums of frames under "
         "0.1%% of the whole. Load average at start: %s." % (
             fint(n), fint(info["sites_b"]), size / 1e6, len(block.encode()) / 1e6,
             (size - len(block.encode())) / 1e3, len(nodes), smaller, load()))
    rows = []
    if h and j:
        rows.append(["write the report", spread([x["wall"] for x in h], fs), spread([x["cpu"] for x in h], fs),
                     spread([x["cpu"] for x in j], fs),
                     spread([h[i]["cpu"] / j[i]["cpu"] for i in range(k)], fr)])
    else:
        rows.append(["write the report", "failed: " + "; ".join(broken.values()), "", "", ""])
    table(["", "html wall", "html CPU", "json CPU (same diff)", "html/json CPU"], rows)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    drive = os.path.join(ARGS.root, "tests", "browser", "drive.js")
    if not chromium or not shutil.which("node"):
        print("_no chromium or node: time to ready not measured_\n")
        return
    spec = os.path.join(ARGS.work, "html-spec.json")
    with open(spec, "w") as f:
        json.dump({"chromium": chromium, "pages": [{"name": "r%d" % i, "path": out} for i in range(nrep)]}, f)
    r = subprocess.run(["node", drive, spec], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        print("_drive.js failed: %s_\n" % r.stderr.strip().splitlines()[-1:])
        return
    pages = json.loads(r.stdout)
    ready = [p["ready_ms"] / 1000 for p in pages if "ready_ms" in p]
    errors = sorted({e for p in pages for e in p["errors"]})
    table(["headless Chromium", "load to ready (bound 3 s)", "console errors"],
          [["%d loads of the page in one browser" % len(pages), spread(ready, fs) if ready else "never ready",
            "; ".join(errors) or "none"]])


SECTIONS = {"python": section_python, "snapshot": section_snapshot, "diff": section_diff,
            "size": section_size, "native": section_native, "pytest": section_pytest,
            "attach": section_attach, "mixed": section_mixed, "html": section_html}


def main():
    global ARGS
    ap = argparse.ArgumentParser(description="one section of bench/run")
    ap.add_argument("section", choices=sorted(SECTIONS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--leakdiff", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--diff-sizes", default="")
    ap.add_argument("--snapshot-sizes", default="")
    ARGS = ap.parse_args()
    t0 = time.perf_counter()
    SECTIONS[ARGS.section]()
    sys.stdout.flush()
    progress("section %s took %.0f s" % (ARGS.section, time.perf_counter() - t0))


if __name__ == "__main__":
    main()
