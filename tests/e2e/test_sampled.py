#!/usr/bin/env python3
"""End to end: `leakdiff record --sample=BYTES` on Python programs, the
sampled mode built on the allocator hooks (agents/python/ext/sampler.c).

The programs retain a known number of blocks of known sizes at one line,
and the estimates are checked against them.

Why the tolerance is what it is.  A block of n bytes is picked with
probability p = 1 - exp(-n / BYTES), independently of every other block
(the gaps of a Poisson process are independent), and a picked block counts
1/p blocks and n/p bytes.  The estimates are therefore unbiased, with
variance sum((1 - p) / p) for the count and sum(n^2 (1 - p) / p) for the
bytes, over the live blocks of the site.  The tests work that variance out
from the sizes the program reports and accept six standard deviations:
with tens of thousands of independent blocks the sum is close to normal,
and a correct sampler fails such a check about twice in a billion runs.
For 20,000 bytearrays of 1,000 bytes at --sample=1KiB that is about +-9%
on the count (the 56-byte object headers are rarely picked and weigh ~19
each) and +-3.3% on the bytes.
"""
import json
import math
import os

import harness
from harness import PYTHON, TempDirCase, leakdiff, load_snap, source_line

SIGMAS = 6
MEAN = 1024   # --sample=1KiB

RETAIN = r'''
import json, sys
N = int(sys.argv[1])
KEEP = [None] * N
GROWN = []

def fill(n):
    for i in range(n):
        KEEP[i] = bytearray(1000)  # retained: one line, n objects

def churn(n):
    for _ in range(n):
        tmp = bytearray(1000)  # churn: every block freed again
        del tmp

def grow():
    buf = bytearray()
    for _ in range(20000):
        buf += b"x" * 50  # grown: one block resized many times
    GROWN.append(buf)

fill(N)
churn(4 * N)
grow()
header = sys.getsizeof(bytearray())
print(json.dumps({"n": N, "header": header, "buffer": sys.getsizeof(KEEP[0]) - header,
                  "grown": sys.getsizeof(GROWN[0]) - header}))
'''

THREADS = r'''
import json, sys, threading
N = int(sys.argv[1])
T = 4
KEEP = [None] * (N * T)

def worker(k):
    for i in range(N):
        KEEP[k * N + i] = bytearray(1000)  # retained by thread
        junk = [str(i)] * 3  # temporaries
        del junk

threads = [threading.Thread(target=worker, args=(k,)) for k in range(T)]

def churn(n):
    for _ in range(n):
        tmp = bytearray(500)  # main churn
        del tmp

for t in threads:
    t.start()
churn(2 * N)
for t in threads:
    t.join()
header = sys.getsizeof(bytearray())
print(json.dumps({"n": N * T, "header": header, "buffer": sys.getsizeof(KEEP[0]) - header}))
'''

INSTANCES = r'''
import json, sys
FIELDS = ["f%d" % k for k in range(20)]

class Record:
    __slots__ = FIELDS

KEEP = []

def fill(n):
    for i in range(n):
        KEEP.append(Record())  # records

fill(int(sys.argv[1]))
# With __slots__ and no __weakref__, getsizeof is the size of the block.
print(json.dumps({"n": len(KEEP), "size": sys.getsizeof(KEEP[0])}))
'''

PINNED = r'''
import gc, json, weakref, leakdiff
src = "def work():\n    junk = [bytearray(100) for _ in range(1000)]\n    return len(junk)\n"
ns = {}
exec(compile(src, "<generated>", "exec"), ns)
ns["work"]()
ref = weakref.ref(ns["work"].__code__)
del ns
gc.collect()
before = ref() is not None
leakdiff.snapshot("forget")
gc.collect()
print(json.dumps({"before": before, "after": ref() is not None}))
'''

FORK = r'''
import os, sys
KEEP = [bytearray(1000) for _ in range(5000)]  # parent keeps
pid = os.fork()
if pid == 0:
    sampler = sys.modules.get("leakdiff._sampler")
    child_keep = [bytearray(1000) for _ in range(5000)]
    os._exit(3 if sampler is None else (4 if sampler.is_on() else 0))
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
'''


def tolerance(sizes, mean=MEAN):
    """SIGMAS standard deviations of the count and bytes estimates for live
    blocks given as [(how many, size)]."""
    var_count = var_bytes = 0.0
    for k, n in sizes:
        p = -math.expm1(-n / mean)
        var_count += k * (1 - p) / p
        var_bytes += k * n * n * (1 - p) / p
    return SIGMAS * math.sqrt(var_count), SIGMAS * math.sqrt(var_bytes)


def site_rows(doc, path, line):
    """Sites whose innermost frame is path:line, as (count, bytes, frames)."""
    strings, frames = doc["strings"], doc["frames"]
    out = []
    for count, size, tb in doc["sites"]:
        top = frames[tb[0]]
        if os.path.realpath(strings[top[0]]) == os.path.realpath(path) and top[1] == line:
            out.append((count, size, [(strings[frames[i][0]], frames[i][1], strings[frames[i][2]])
                                      for i in tb]))
    return out


class Sampled(TempDirCase):
    def setUp(self):
        super().setUp()
        if not harness.ext_built("_sampler"):
            self.skipTest("no _sampler extension built for %s" % PYTHON)

    def record(self, source, *args, opts=("--sample=1KiB",), env=None, name="prog.snap"):
        prog = self.path("prog.py")
        with open(prog, "w") as f:
            f.write(source)
        out = self.path(name)
        r = leakdiff("record", "-o", out, *opts, "--", PYTHON, prog, *args, env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        return prog, load_snap(out), r, out

    def assert_close(self, got, want, tol, what):
        self.assertLessEqual(abs(got - want), tol,
                             "%s: estimate %d, true %d, tolerance %.0f" % (what, got, want, tol))

    def test_estimates_of_a_known_heap(self):
        prog, doc, r, snap = self.record(RETAIN, "20000")
        facts = json.loads(r.stdout)
        n, header, buffer = facts["n"], facts["header"], facts["buffer"]
        self.assertEqual(doc["meta"].get("sample"), MEAN)
        self.assertNotIn("unavailable", r.stderr)

        line = source_line(prog, "# retained")
        rows = site_rows(doc, prog, line)
        self.assertEqual(len(rows), 1, rows)
        count, size, frames = rows[0]
        self.assertEqual(frames[0][1:], (line, "fill"))
        self.assertEqual(frames[1][2], "<module>")
        tc, tb = tolerance([(n, header), (n, buffer)])
        self.assert_close(count, 2 * n, tc, "blocks")
        self.assert_close(size, n * (header + buffer), tb, "bytes")

        # Freed blocks leave the sample: a line whose blocks all died is absent.
        self.assertEqual(site_rows(doc, prog, source_line(prog, "# churn")), [])
        # A block resized 20,000 times is one block of its last size (large
        # enough to be picked with probability 1 - exp(-1000) = 1).
        grown = site_rows(doc, prog, source_line(prog, "# grown"))
        self.assertEqual([(c, b) for c, b, _ in grown], [(1, facts["grown"])])

        # The reports say the figures are estimates.
        shown = leakdiff("show", snap)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("sampled every 1.00 KiB: estimates", shown.stdout)
        self.assertIn("prog.py:%d in fill" % line, shown.stdout)
        diffed = leakdiff("diff", snap, snap)
        self.assertEqual(diffed.returncode, 0, diffed.stderr)
        self.assertIn("sampled every 1.00 KiB: estimates", diffed.stdout)

    def test_type_sites_of_a_known_class(self):
        prog, doc, r, snap = self.record(INSTANCES, "20000")
        facts = json.loads(r.stdout)
        n, size = facts["n"], facts["size"]
        names = doc["strings"]
        types = {names[row[0]]: i for i, row in enumerate(doc["types"])}
        self.assertEqual(doc["types"][types["__main__.Record"]][1], n)   # the census stays exact
        line = source_line(prog, "# records")
        rows = [row for row in doc["type_sites"] if row[0] == types["__main__.Record"]]
        self.assertEqual(len(rows), 1, rows)
        _t, count, nbytes, tb = rows[0]
        top = doc["frames"][tb[0]]
        self.assertEqual((top[1], names[top[2]]), (line, "fill"))
        tc, tb_ = tolerance([(n, size)])
        self.assert_close(count, n, tc, "instances")
        self.assert_close(nbytes, n * size, tb_, "instance bytes")
        # ... which lets the diff name the line behind the growth.
        _, _, _, snap2 = self.record(INSTANCES, "60000", name="more.snap")
        d = leakdiff("diff", snap, snap2)
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertRegex(d.stdout, r"Likely leak: \+[0-9,]+ __main__.Record objects")
        self.assertIn("prog.py:%d in fill" % line, d.stdout)

    def test_threads(self):
        prog, doc, r, _ = self.record(THREADS, "5000")
        facts = json.loads(r.stdout)
        n, header, buffer = facts["n"], facts["header"], facts["buffer"]
        line = source_line(prog, "# retained by thread")
        rows = site_rows(doc, prog, line)
        self.assertTrue(rows, doc["sites"][:5])
        # Every thread has the same stack (worker <- threading's run); add up
        # in case an interpreter shows them apart.
        for _c, _b, frames in rows:
            self.assertEqual(frames[0][2], "worker")
        count = sum(c for c, _b, _f in rows)
        size = sum(b for _c, b, _f in rows)
        tc, tb = tolerance([(n, header), (n, buffer)])
        self.assert_close(count, 2 * n, tc, "blocks")
        self.assert_close(size, n * (header + buffer), tb, "bytes")
        self.assertEqual(site_rows(doc, prog, source_line(prog, "# main churn")), [])
        self.assertEqual(site_rows(doc, prog, source_line(prog, "# temporaries")), [])

    def test_forked_child_stops_sampling(self):
        prog, doc, r, _ = self.record(FORK)
        # 0: the child had the sampler loaded, and stopped, after fork.
        self.assertEqual(r.stdout.strip(), "0", r.stderr)
        self.assertEqual(doc["meta"].get("sample"), MEAN)
        self.assertTrue(site_rows(doc, prog, source_line(prog, "# parent keeps")))

    def test_code_objects_released_at_snapshot(self):
        """Stacks hold their code objects until a snapshot finds no live
        picked block under them; code compiled on the fly is then freed."""
        _, doc, r, _ = self.record(PINNED, opts=("--sample=1",))
        self.assertEqual(json.loads(r.stdout), {"before": True, "after": False})

    def test_cheap_in_a_busy_loop(self):
        """Not a benchmark (bench/run is): a guard against a sampler that
        captures every allocation.  100,000 temporary objects must not
        leave more than a few hundred picks at --sample=512KiB."""
        src = "import sys\nx = [bytearray(100) for _ in range(100000)]\nprint(sys.modules['leakdiff._sampler'].stats()['picked'])\n"
        _, doc, r, _ = self.record(src, opts=("--sample=512KiB",))
        self.assertEqual(doc["meta"].get("sample"), 512 * 1024)
        # 100,000 x (100 + 56) bytes is ~15 MB: about 30 picks expected.
        self.assertLess(int(r.stdout), 300)


class Fallback(TempDirCase):
    def test_pure_agent_tracks_exactly_and_says_so(self):
        prog = self.path("prog.py")
        with open(prog, "w") as f:
            f.write(RETAIN)
        out = self.path("prog.snap")
        r = leakdiff("record", "--sample=1KiB", "-o", out, "--", PYTHON, prog, "3000",
                     env={"LEAKDIFF_PURE": "1"}, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("leakdiff: agent: --sample is unavailable", r.stderr)
        self.assertIn("tracking every allocation with tracemalloc", r.stderr)
        facts = json.loads(r.stdout)
        doc = load_snap(out)
        self.assertNotIn("sample", doc["meta"])
        rows = site_rows(doc, prog, source_line(prog, "# retained"))
        self.assertEqual([(c, b) for c, b, _ in rows],
                         [(2 * facts["n"], facts["n"] * (facts["header"] + facts["buffer"]))])
        shown = leakdiff("show", out)
        self.assertNotIn("estimates", shown.stdout)


if __name__ == "__main__":
    harness.main()
