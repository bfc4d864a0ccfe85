#!/usr/bin/env python3
"""Golden tests: reports on the fixture snapshots in tests/data compared
byte for byte with the expected files in tests/data/golden. After an
intended change of output, regenerate them with
LEAKDIFF_UPDATE_GOLDEN=1 tests/e2e/test_golden.py and review the diff."""
import json
import os
import unittest

import harness
from harness import DATA, SOURCE, leakdiff

GOLDEN = os.path.join(DATA, "golden")
BEFORE = "tests/data/before.snap"
AFTER = "tests/data/after.snap"

CASES = {
    "diff.txt": ["diff", BEFORE, AFTER],
    "diff-verbose.txt": ["diff", "-v", BEFORE, AFTER],
    "diff-top1-types.txt": ["diff", "--top=1", "--by=type", BEFORE, AFTER],
    "diff-min-bytes.txt": ["diff", "--min-bytes=150KiB", "--by=site", BEFORE, AFTER],
    "diff-depth1.txt": ["diff", "--depth=1", "--by=site", BEFORE, AFTER],
    "diff-color.txt": ["diff", "--color=always", BEFORE, AFTER],
    "diff-reverse.txt": ["diff", AFTER, BEFORE],
    "diff.json": ["diff", "--format=json", BEFORE, AFTER],
    "diff-limits.txt": ["diff", "--max-total-growth=5%", "--max-site-growth=100KiB",
                        "--max-type-growth=5000", BEFORE, AFTER],
    "diff-limits.json": ["diff", "--format=json", "--top=2", "--max-site-growth=150KiB", BEFORE, AFTER],
    "diff.md": ["diff", "--format=markdown", "--max-total-growth=512KiB", BEFORE, AFTER],
    "diff-suppress.txt": ["diff", "--suppress=tests/data/suppressions.txt", "--max-site-growth=100KiB",
                          BEFORE, AFTER],
    "diff-trend.txt": ["diff", BEFORE, "tests/data/middle.snap", AFTER],
    "diff-exact.txt": ["diff", "--match=exact", "--by=site", BEFORE, "tests/data/moved.snap"],
    "diff-graded.txt": ["diff", "--by=site", "-v", BEFORE, "tests/data/moved.snap"],
    "show.txt": ["show", AFTER],
    "show.json": ["show", "--format=json", AFTER],
    "diff-80col.txt": ["diff", BEFORE, AFTER],
    "diff-80col-trend.txt": ["diff", "-v", "--max-site-growth=100KiB", BEFORE, "tests/data/middle.snap", AFTER],
    "show-80col.txt": ["show", AFTER],
}


# The width each text report is laid out for: 132 columns, as wide as the
# widest line of the side-by-side layout needs, unless given here.
COLUMNS = {"diff-80col.txt": "80", "diff-80col-trend.txt": "80", "show-80col.txt": "80"}


class Golden(unittest.TestCase):
    pass


# Reports whose limits are exceeded exit 1 (the report is still written).
FAILING = {"diff-limits.txt", "diff-limits.json", "diff.md", "diff-suppress.txt", "diff-80col-trend.txt"}

# What each case prints on standard error, exactly; nothing for the rest.
STDERR = {
    "diff-reverse.txt": "leakdiff: warning: %s was taken before %s (2026-11-28T12:00:01.000Z against "
                        "2026-11-28T12:00:02.000Z); the diff is reversed\n" % (BEFORE, AFTER),
}


def make_case(name, args):
    def test(self):
        r = leakdiff(*args, cwd=SOURCE, env={"NO_COLOR": "", "COLUMNS": COLUMNS.get(name, "132")})
        self.assertEqual(r.returncode, 1 if name in FAILING else 0, r.stderr)
        self.assertEqual(r.stderr, STDERR.get(name, ""))
        path = os.path.join(GOLDEN, name)
        if os.environ.get("LEAKDIFF_UPDATE_GOLDEN"):
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w") as f:
                f.write(r.stdout)
        with open(path) as f:
            expected = f.read()
        self.maxDiff = None
        self.assertEqual(r.stdout, expected)
        if name.endswith(".json"):
            json.loads(r.stdout)
        width = int(COLUMNS.get(name, "132"))
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), width, line)
    return test


for _name, _args in CASES.items():
    setattr(Golden, "test_" + _name.replace(".", "_").replace("-", "_"), make_case(_name, _args))


class JsonShape(unittest.TestCase):
    """The documented fields of the JSON report, checked by meaning."""

    def test_diff_fields(self):
        doc = json.loads(leakdiff("diff", "--format=json", BEFORE, AFTER, cwd=SOURCE).stdout)
        self.assertEqual(doc["format"], "leakdiff-diff")
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["before"]["path"], BEFORE)
        self.assertEqual(doc["after"]["meta"]["pid"], 4250)
        t = doc["total"]
        self.assertEqual(t["bytes_delta"], t["bytes_after"] - t["bytes_before"])
        self.assertEqual(t["count_delta"], t["count_after"] - t["count_before"])
        session = harness.find(doc["types"], name="app.session.Session")
        self.assertEqual((session["count_before"], session["count_after"], session["count_delta"]),
                         (1000, 3000, 2000))
        self.assertEqual(session["sites"][0]["frames"][0],
                         {"function": "login", "file": "/srv/app/app/session.py", "line": 42,
                          "function_line": 40, "text": "s = Session(user)"})
        sites = doc["sites"]
        deltas = [s["bytes_delta"] for s in sites]
        self.assertEqual(deltas, sorted(deltas, reverse=True))
        gone = harness.find(sites, state="gone")
        self.assertEqual(gone["count_after"], 0)
        hint = harness.find(doc["hints"], kind="container", name="app.cache.store")
        self.assertEqual((hint["before"], hint["after"], hint["delta"]), (10, 10010, 10000))
        lru = harness.find(doc["hints"], kind="lru_cache")
        self.assertIsNone(lru["maxsize"])
        path = harness.find(doc["hints"], kind="path")
        self.assertEqual(path["path"][0], "app.session.Session.registry")

    def test_no_color_env(self):
        r = leakdiff("diff", "--color=auto", BEFORE, AFTER, cwd=SOURCE, env={"NO_COLOR": "1"})
        self.assertNotIn("\x1b", r.stdout)
        r = leakdiff("diff", "--color=always", BEFORE, AFTER, cwd=SOURCE, env={"NO_COLOR": "1"})
        self.assertIn("\x1b[1m", r.stdout)


if __name__ == "__main__":
    harness.main()
