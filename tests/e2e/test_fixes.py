#!/usr/bin/env python3
"""End to end: the suggested fix of each leak hint, on the leaks of
examples/python/leakyapp recorded at two sizes (N more requests leave N
more entries in each cache). The same fixes must reach the JSON, text and
Markdown reports; the cycles the example makes are all collected, so they
get none."""
import json
import os
import shutil
import tempfile
import unittest

import harness
from harness import EXAMPLES, PYTHON, find, leakdiff

ENV = {"PYTHONPATH": EXAMPLES, "LEAKDIFF_PATH_SECONDS": "10"}
LEAKS = ("registry", "cache", "lru", "cycles")

CONTAINER = "bound it, evict old entries, or clear it when done"
REGISTRY = "hold the instances weakly: weakref.WeakSet or weakref.WeakValueDictionary"
LRU = "give it a maxsize"


class Fixes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="leakdiff-e2e-")
        cls.snaps = []
        for n in (1000, 3000):
            out = os.path.join(cls.tmp, "%d.snap" % n)
            args = [a for leak in LEAKS for a in ("--leak", leak)]
            r = leakdiff("record", "-o", out, "--", PYTHON, "-m", "leakyapp", *args, "--requests", str(n),
                         env=ENV, cwd=cls.tmp)
            assert r.returncode == 0, r.stderr
            cls.snaps.append(out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def report(self, *opts):
        # Wide enough that no hint line is wrapped.
        r = leakdiff("diff", "--top=0", *opts, *self.snaps, env={"COLUMNS": "400", "NO_COLOR": ""})
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def hints(self):
        return json.loads(self.report("--format=json"))["hints"]

    def test_json_fix_for_each_leak(self):
        hints = self.hints()
        h = find(hints, kind="container", name="leakyapp.cache.CACHE")
        self.assertEqual((h["before"], h["after"], h["fix"]), (1000, 3000, CONTAINER))
        # A class attribute holding its own class's instances: a registry.
        h = find(hints, kind="container", name="leakyapp.session.Session.registry")
        self.assertEqual((h["before"], h["after"], h["fix"]), (1000, 3000, REGISTRY))
        h = find(hints, kind="lru_cache", name="leakyapp.pricing.quote")
        self.assertEqual((h["maxsize"], h["before"], h["after"], h["fix"]), (None, 1000, 3000, LRU))
        # Each path says what to do about its root.
        p = find(hints, kind="path", type="leakyapp.session.Session")
        self.assertEqual((p["path"][0], p["fix"]), ("leakyapp.session.Session.registry", REGISTRY))
        p = find(hints, kind="path", type="leakyapp.cache.CachedPage")
        self.assertEqual((p["path"][0], p["fix"]), ("leakyapp.cache.CACHE", CONTAINER))
        p = find(hints, kind="path", type="leakyapp.pricing.Quote")
        self.assertEqual((p["path"][0], p["fix"]), ("leakyapp.pricing.quote", LRU))

    def test_collected_cycles_get_no_fix(self):
        for h in self.hints():
            if h["kind"] in ("cycles", "garbage"):
                self.assertNotIn("fix", h, h)
            if h["kind"] == "path":
                self.assertNotEqual(h["type"], "leakyapp.cycles.Node", h)
        self.assertNotIn("break the cycle", self.report())

    def test_text_prints_each_fix_under_its_hint(self):
        lines = self.report().splitlines()
        fixes = {h["fix"] for h in self.hints() if "fix" in h}
        self.assertEqual(fixes, {CONTAINER, REGISTRY, LRU})
        for hint, fix in (("container  leakyapp.cache.CACHE: dict 1,000 -> 3,000 entries", CONTAINER),
                          ("container  leakyapp.session.Session.registry: list", REGISTRY),
                          ("lru_cache  leakyapp.pricing.quote: unbounded lru_cache", LRU),
                          ("path       leakyapp.session.Session <- list <- leakyapp.session.Session.registry",
                           REGISTRY)):
            at = [i for i, line in enumerate(lines) if line.startswith("  " + hint)]
            self.assertEqual(len(at), 1, (hint, lines))
            self.assertEqual(lines[at[0] + 1], " " * 13 + "fix: " + fix)

    def test_markdown_has_the_hints_with_paths_and_fixes(self):
        md = self.report("--format=markdown")
        start = md.index("<details open><summary>Leak hints</summary>\n\n")
        section = md[start:md.index("</details>", start)]
        self.assertIn("- **container** leakyapp.cache.CACHE: dict 1,000 → 3,000 entries (+2,000)\n"
                      "  - fix: " + CONTAINER + "\n", section)
        self.assertIn("- **lru\\_cache** leakyapp.pricing.quote: unbounded lru\\_cache (maxsize=None) "
                      "1,000 → 3,000 entries (+2,000)\n  - fix: " + LRU + "\n", section)
        self.assertIn("- **path** leakyapp.session.Session ← list ← leakyapp.session.Session.registry\n"
                      "  - fix: " + REGISTRY + "\n", section)


BUS = """\
import sys


class Report:
    def __init__(self, n):
        self.n = n


class Listener:
    def __init__(self, n):
        self.n = n

    def on_event(self, event):
        return self.n


class EventBus:
    def __init__(self):
        self.handlers = []

    def subscribe(self, fn):
        self.handlers.append(fn)


bus = EventBus()


def handle(n):
    report = Report(n)
    bus.subscribe(lambda event: report.n)
    bus.subscribe(Listener(n).on_event)


for i in range(int(sys.argv[1])):
    handle(i)
"""


class Callbacks(harness.TempDirCase):
    """Closures and bound methods subscribed to an event bus and never
    unsubscribed: the paths run through a function's cell and a bound
    method held by the bus's list."""

    def test_paths_through_subscribed_callables(self):
        with open(self.path("bus.py"), "w") as f:
            f.write(BUS)
        snaps = []
        for n in (1000, 3000):
            out = self.path("%d.snap" % n)
            r = leakdiff("record", "-o", out, "--", PYTHON, "bus.py", str(n), env=ENV, cwd=self.tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            snaps.append(out)
        d = harness.diff_json(*snaps)
        fix = "unsubscribe when done, or subscribe a weakref.WeakMethod"
        for name in ("__main__.Report", "__main__.Listener"):
            t = find(d["types"], name=name)
            self.assertEqual(t["count_delta"], 2000, name)
        p = find(d["hints"], kind="path", type="__main__.Report")
        self.assertEqual(p["path"], ["__main__.bus", "__main__.EventBus", "list", "function", "cell",
                                     "__main__.Report"])
        self.assertEqual(p["fix"], fix)
        p = find(d["hints"], kind="path", type="__main__.Listener")
        self.assertEqual(p["path"], ["__main__.bus", "__main__.EventBus", "list", "method",
                                     "__main__.Listener"])
        self.assertEqual(p["fix"], fix)
        # The bus itself, one instance held by a module global, gets none.
        for h in d["hints"]:
            if h["kind"] == "path" and h["path"][-1] == "__main__.EventBus":
                self.assertNotIn("fix", h, h)


if __name__ == "__main__":
    harness.main()
