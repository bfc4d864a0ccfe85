#!/usr/bin/env python3
"""End to end: the default mode says when it is blind (issue 12, item 5).

Each Python snapshot records the process's malloc total (totals.malloc_bytes);
when it grows clearly more than the traced heap, the diff says how much no
site explains and to record with --native. A C extension that keeps
a malloc'ed copy of every string, and ctypes' libc.malloc(1000) kept, make
the line appear with the bytes they leaked; the pure-Python programs of
examples/ and of these tests never do.
"""
import os
import re
import shutil
import sys

import harness
from harness import EXAMPLES, TempDirCase, diff_json, leakdiff, load_snap, run

HERE = os.path.dirname(os.path.abspath(__file__))
BLIND = os.path.join(HERE, "blind")
sys.path.insert(0, HERE)

import test_census_paths  # noqa: E402  (the programs other tests record)
import test_fixes  # noqa: E402
import test_mixed  # noqa: E402
import test_sampled  # noqa: E402
import test_suspect  # noqa: E402

LINE = re.compile(r"^Native memory grew by (.+) more than the traced heap explains\.$", re.M)
ADVICE = "record with --native to see where it was allocated and from which Python line."

# The pure-Python programs, with the two sizes each is recorded at.
PROGRAMS = {
    "suspect.py": (test_suspect.PROGRAM, 1000, 6000),
    "census_paths.py": (test_census_paths.PROGRAM, 500, 1500),
    "retain.py": (test_sampled.RETAIN, 1000, 3000),
    "threads.py": (test_sampled.THREADS, 500, 1500),
    "instances.py": (test_sampled.INSTANCES, 2000, 6000),
    "bus.py": (test_fixes.BUS, 1000, 3000),
    "once.py": (test_mixed.ONCE, 1000, 3000),
}

_setup = None


def setup():
    """(python, env, ext_dir) for recording with the agent's extensions and
    the test's leakyext built for that interpreter; (None, why, None) when
    that cannot be."""
    global _setup
    if _setup is not None:
        return _setup
    python, env = harness.python_with_agent()
    if python is None:
        _setup = (None, env, None)
        return _setup
    probe = run([python, os.path.join(harness.SOURCE, "agents", "python", "ext", "probe.py")])
    lines = probe.stdout.split("\n")
    cc = shutil.which("cc") or shutil.which("gcc")
    if probe.returncode != 0 or len(lines) < 2 or not lines[1] or not cc:
        _setup = (None, "no headers or no C compiler for %s" % python, None)
        return _setup
    import tempfile
    import atexit
    ext_dir = tempfile.mkdtemp(prefix="leakdiff-blind-")
    atexit.register(shutil.rmtree, ext_dir, True)
    out = os.path.join(ext_dir, "leakyext." + lines[1])
    r = run([cc, "-std=c11", "-O2", "-g", "-fPIC", "-shared", "-I" + lines[0], "-o", out,
             os.path.join(BLIND, "leakyext.c")], timeout=300)
    if r.returncode != 0:
        _setup = (None, "leakyext does not build: " + r.stderr[-300:], None)
        return _setup
    _setup = (python, env, ext_dir)
    return _setup


class Blind(TempDirCase):
    def setUp(self):
        super().setUp()
        self.python, self.env, self.ext_dir = setup()
        if self.python is None:
            self.skipTest(self.env)

    def record(self, name, args, cwd=None, extra=()):
        out = self.path(name)
        env = dict(self.env)
        env["PYTHONPATH"] = self.ext_dir
        r = leakdiff("record", "-o", out, *extra, "--", self.python, *args, env=env,
                     cwd=cwd or self.tmp, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = load_snap(out)
        self.assertIn("malloc_bytes", doc["totals"], "the agent recorded no malloc total")
        return out

    def pair(self, script, small, large, extra=()):
        path = os.path.join(BLIND, script)
        return (self.record("a-" + script + ".snap", [path, str(small)], extra=extra),
                self.record("b-" + script + ".snap", [path, str(large)], extra=extra))

    def reports(self, a, b):
        """(text, markdown, json) of the diff of a and b."""
        text = leakdiff("diff", a, b)
        self.assertIn(text.returncode, (0, 1), text.stderr)
        md = leakdiff("diff", "--format=markdown", a, b)
        self.assertIn(md.returncode, (0, 1), md.stderr)
        return text.stdout, md.stdout, diff_json(a, b)

    def assert_blind(self, a, b, low, high):
        text, md, d = self.reports(a, b)
        self.assertRegex(text, LINE)
        self.assertIn(ADVICE, text)
        self.assertIn("more than the traced heap explains.", md)
        self.assertIn("> " + ADVICE, md)
        blind = d.get("native_unexplained")
        self.assertIsNotNone(blind, "no native_unexplained in the JSON report")
        self.assertGreaterEqual(blind["bytes"], low)
        self.assertLessEqual(blind["bytes"], high)
        self.assertEqual(blind["record_with"], "--native")
        before, after = load_snap(a)["totals"], load_snap(b)["totals"]
        self.assertEqual(blind["malloc_delta"], after["malloc_bytes"] - before["malloc_bytes"])
        self.assertEqual(blind["heap_delta"], after["heap_bytes"] - before["heap_bytes"])
        return blind

    def assert_quiet(self, a, b, what):
        for x, y in ((a, b), (b, a)):
            text, md, d = self.reports(x, y)
            self.assertNotRegex(text, LINE, what)
            self.assertNotIn("traced heap explains", md, what)
            self.assertNotIn("native_unexplained", d, what)

    def test_c_extension_leak_is_reported(self):
        # 2,000 more copies of 1,027 bytes each (1,026 characters and the
        # NUL): malloc hands out at least that, and a little more per block.
        a, b = self.pair("app_ext.py", 1000, 3000)
        self.assert_blind(a, b, 2000 * 1027, 2000 * 1027 * 5 // 4)

    def test_ctypes_malloc_kept_is_reported(self):
        a, b = self.pair("app_ctypes.py", 1000, 3000)
        self.assert_blind(a, b, 2000 * 1000 - 100 * 1024, 2000 * 1000 * 5 // 4)

    def test_tracemalloc_mode_reports_it_too(self):
        a, b = self.pair("app_ext.py", 1000, 3000, extra=("--tracemalloc",))
        self.assert_blind(a, b, 2000 * 1027, 2000 * 1027 * 5 // 4)

    def test_leakyapp_is_quiet(self):
        for extra in ((), ("--tracemalloc",)):
            a = self.record("a.snap", ["-m", "leakyapp", "--requests", "1000"], cwd=EXAMPLES, extra=extra)
            b = self.record("b.snap", ["-m", "leakyapp", "--requests", "3000"], cwd=EXAMPLES, extra=extra)
            self.assert_quiet(a, b, "leakyapp %s" % (extra,))

    def test_pure_python_test_programs_are_quiet(self):
        for name, (source, small, large) in sorted(PROGRAMS.items()):
            prog = self.path(name)
            with open(prog, "w") as f:
                f.write(source)
            a = self.record("a-" + name + ".snap", [prog, str(small)])
            b = self.record("b-" + name + ".snap", [prog, str(large)])
            self.assert_quiet(a, b, name)

    def test_old_snapshots_without_the_total_are_quiet(self):
        # The fixtures predate the field: no line, whatever they hold.
        data = harness.DATA
        self.assert_quiet(os.path.join(data, "before.snap"), os.path.join(data, "after.snap"), "fixtures")


if __name__ == "__main__":
    harness.main()
