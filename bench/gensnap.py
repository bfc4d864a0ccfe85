#!/usr/bin/env python3
"""Write a pair of synthetic leakdiff-snapshot(5) files for the diff benchmark.

    gensnap.py --sites N [--depth 16] [--seed 1] OUT_A OUT_B

A is a "before" snapshot with N allocation sites at the given traceback
depth; B is the "after" snapshot of the same program: most sites are the
same with the same counts, GROW_SHARE of them grew, NEW_SHARE are new and
GONE_SHARE are gone.  Both documents number their string and frame tables
in order of first use, as the Python agent does; B's sites come in another
order, so its tables are numbered differently from A's (as two runs of a
program produce) and a reader cannot pair sites by table index.

The tables are shared the way a real program's are: a few thousand files,
tens of thousands of functions, each function a handful of lines (frames),
and tracebacks that are a call chain whose outer frames (main loop,
dispatcher) are common to many sites while the inner ones vary.  Pool sizes
scale with N and stop at 5,000 files, 50,000 functions, 250,000 frames.

Prints one JSON object on stdout describing the files (sizes, table sizes).
Only the standard library is used; output is deterministic for a seed.
"""

import argparse
import gzip
import json
import os
import random
import sys

GROW_SHARE = 0.01
NEW_SHARE = 0.005
GONE_SHARE = 0.005


def clamp(v, lo, hi):
    return max(lo, min(hi, v))


def build_tables(n_sites, rng):
    n_files = clamp(n_sites // 200, 50, 5000)
    n_funcs = clamp(n_sites // 20, 500, 50000)
    n_frames = clamp(n_sites // 4, 2000, 250000)
    strings = []
    files = []
    for f in range(n_files):
        files.append(len(strings))
        strings.append("/srv/app/venv/lib/python3.11/site-packages/pkg%03d/sub%02d/module_%05d.py"
                       % (f % 400, f % 17, f))
    funcs = []          # (string index, file string index, first line)
    for g in range(n_funcs):
        funcs.append((len(strings), files[g % n_files], 10 + (g // n_files) * 40))
        strings.append("Handler%04d.process_%s_%d" % (g % 3000, ("read", "write", "parse", "emit")[g % 4], g))
    # Source text: most lines distinct, some repeated ("return result").
    n_texts = n_frames * 3 // 4
    texts = []
    for t in range(n_texts):
        texts.append(len(strings))
        if t % 10 == 0:
            strings.append("return result")
        else:
            strings.append("value_%d = helper_%d(request, key=%d)" % (t, t % 997, t))
    frames = []
    for j in range(n_frames):
        name, fileix, first = funcs[j % n_funcs]
        line = first + 1 + (j // n_funcs)
        frames.append([fileix, line, name, first, texts[(j * 7919) % n_texts]])
    return strings, frames


def tracebacks(count, n_frames, depth, rng, avoid=None):
    """`count` distinct tracebacks; frame k (0 innermost) is drawn from the
    first max(8, n_frames >> k) frames, so outer frames are widely shared."""
    widths = [max(8, n_frames >> k) for k in range(depth)]
    r = rng.random
    seen = set() if avoid is None else avoid
    out = []
    while len(out) < count:
        tb = tuple([int(r() * w) for w in widths])
        if tb in seen:
            continue
        seen.add(tb)
        out.append(tb)
    return out


def site_rows(tbs, rng):
    r = rng.random
    sizes = (16, 32, 48, 64, 96, 128, 256, 512, 1024, 4096)
    rows = []
    for tb in tbs:
        count = 1 + int(r() * r() * 200)
        rows.append([count, count * sizes[int(r() * 10)], list(tb)])
    return rows


def types_and_type_sites(strings, sites, rng):
    type_names = ["dict", "list", "str", "tuple", "int", "float", "bytes", "set", "function",
                  "cell", "code", "type", "frozenset", "method", "weakref"]
    type_names += ["app.models.Model%03d" % i for i in range(300)]
    types = []
    for i, name in enumerate(type_names):
        ix = len(strings)
        strings.append(name)
        count = 1 + int(rng.random() * 100000 / (1 + i))
        types.append([ix, count, count * 56])
    type_sites = []
    for i in range(min(2000, len(sites))):
        s = sites[(i * 7919) % len(sites)]
        type_sites.append([i % len(types), max(1, s[0] // 2), max(16, s[1] // 2), list(s[2])])
    return types, type_sites


def document(strings, frames, types, sites, type_sites, depth, seq):
    """The document, its tables numbered in order of first use as the agent
    numbers them (frames as the sites are walked, strings as frames and
    types are)."""
    s_ix = {}
    s_out = []

    def s(i):
        j = s_ix.get(i)
        if j is None:
            j = s_ix[i] = len(s_out)
            s_out.append(strings[i])
        return j

    f_ix = {}
    f_out = []

    def tb_of(tb):
        out = []
        for f in tb:
            j = f_ix.get(f)
            if j is None:
                j = f_ix[f] = len(f_out)
                fr = frames[f]
                f_out.append([s(fr[0]), fr[1], s(fr[2]), fr[3], s(fr[4])])
            out.append(j)
        return out

    type_rows = [[s(t[0]), t[1], t[2]] for t in types]
    site_rows = [[c, b, tb_of(tb)] for c, b, tb in sites]
    ts_rows = [[t[0], t[1], t[2], tb_of(t[3])] for t in type_sites]
    heap_blocks = sum(r[0] for r in site_rows)
    heap_bytes = sum(r[1] for r in site_rows)
    return {
        "format": "leakdiff-snapshot",
        "version": 1,
        "meta": {
            "runtime": "python", "agent": "gensnap", "command": ["python3", "-m", "app"],
            "executable": "/usr/bin/python3", "pid": 4242 + seq, "seq": seq,
            "label": "exit", "trigger": "exit", "time": "2026-01-01T00:00:00.000Z",
            "host": "bench", "python": "3.11.7", "depth": depth, "tracing": True,
            "elapsed_ms": 0.0, "roots": ["/srv/app", "/srv/app/venv/lib/python3.11/site-packages"],
            "stdlib": ["/usr/lib/python3.11"],
        },
        "strings": s_out,
        "frames": f_out,
        "totals": {"heap_bytes": heap_bytes, "heap_blocks": heap_blocks,
                   "objects": sum(t[1] for t in types), "object_bytes": sum(t[2] for t in types)},
        "types": type_rows,
        "sites": site_rows,
        "type_sites": ts_rows,
        "gc": {"enabled": True, "collected": 0, "uncollectable": 0, "garbage": 0,
               "generations": [{"collections": 10, "collected": 0, "uncollectable": 0}] * 3},
        "hints": [{"kind": "container", "name": "app.cache.CACHE", "type": "dict", "length": 1000 + seq}],
    }


def write(path, doc):
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        # Level 6, as leakdiff's own writer uses.
        f.write(gzip.compress(raw, compresslevel=6, mtime=0))
    os.replace(tmp, path)
    return len(raw), os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, required=True)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out_a")
    ap.add_argument("out_b")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    n = args.sites

    strings, frames = build_tables(n, rng)
    seen = set()
    tbs = tracebacks(n, len(frames), args.depth, rng, seen)
    sites_a = site_rows(tbs, rng)
    types_a, ts_a = types_and_type_sites(strings, sites_a, rng)
    raw_a, gz_a = write(args.out_a, document(strings, frames, types_a, sites_a, ts_a, args.depth, 1))

    # B: the same program later.
    n_gone = int(n * GONE_SHARE)
    n_grow = int(n * GROW_SHARE)
    n_new = int(n * NEW_SHARE)
    order = list(range(n))
    rng.shuffle(order)
    gone = set(order[:n_gone])
    grow = set(order[n_gone:n_gone + n_grow])
    sites_b = []
    for i, (c, b, tb) in enumerate(sites_a):
        if i in gone:
            continue
        if i in grow:
            k = 2 + int(rng.random() * 4)
            sites_b.append([c * k, b * k, tb])
        else:
            sites_b.append([c, b, tb])
    sites_b.extend(site_rows(tracebacks(n_new, len(frames), args.depth, rng, seen), rng))
    types_b = [[t[0], t[1] + (t[1] // 10 if i % 7 == 0 else 0), t[2]] for i, t in enumerate(types_a)]
    types_b = [[t[0], t[1], t[1] * 56] for t in types_b]
    rng.shuffle(sites_b)
    raw_b, gz_b = write(args.out_b, document(strings, frames, types_b, sites_b, ts_a, args.depth, 2))

    json.dump({
        "sites": n, "depth": args.depth, "strings": len(strings), "frames": len(frames),
        "sites_b": len(sites_b), "grown": n_grow, "new": n_new, "gone": n_gone,
        "a_bytes": gz_a, "a_raw_bytes": raw_a, "b_bytes": gz_b, "b_raw_bytes": raw_b,
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
