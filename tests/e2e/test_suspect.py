#!/usr/bin/env python3
"""End to end: the likely leak is a type of the program, told by where the
type comes from (issue 17, item 8), and frames and types say what they are
(issue 18, section 2).

The program keeps N locks (a type of the interpreter, _thread.lock, whose
dotted name used to make it the suspect) and N/5 instances of its own class.
The locks grow more in bytes, yet the likely leak is the class; with the
snapshots swapped nothing of the program grew and the locks are not named.
"""
import gzip
import json
import os

import harness
from harness import TempDirCase, diff_json, find, leakdiff, load_snap

PROGRAM = '''\
import sys
import _thread


class Job:
    def __init__(self, i):
        self.i = i


N = int(sys.argv[1])
LOCKS = [_thread.allocate_lock() for _ in range(N)]   # grows: _thread.lock
JOBS = [Job(i) for i in range(N // 5)]                # grows: Job
'''


def likely_line(text):
    for line in text.splitlines():
        if line.startswith("Likely leak:"):
            return line
    return None


class Suspect(TempDirCase):
    def record(self, name, n):
        prog = self.path("locks.py")
        if not os.path.exists(prog):
            with open(prog, "w") as f:
                f.write(PROGRAM)
        out = self.path(name)
        r = leakdiff("record", "-o", out, "--", harness.PYTHON, prog, str(n), cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def pair(self):
        return self.record("a.snap", 1000), self.record("b.snap", 6000)

    def text(self, a, b):
        r = leakdiff("diff", a, b)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return r.stdout

    def without_origins(self, src, name):
        """src as a snapshot from before origins: type rows of three elements."""
        doc = load_snap(src)
        doc["types"] = [row[:3] for row in doc["types"]]
        out = self.path(name)
        with gzip.open(out, "wb") as f:
            f.write(json.dumps(doc).encode("utf-8"))
        return out

    def test_the_program_type_is_the_likely_leak(self):
        a, b = self.pair()
        d = diff_json(a, b)
        lock = find(d["types"], name="_thread.lock")
        job = find(d["types"], name="__main__.Job")
        self.assertIsNotNone(lock, [t["name"] for t in d["types"]])
        self.assertIsNotNone(job, [t["name"] for t in d["types"]])
        self.assertEqual(lock["count_delta"], 5000)
        self.assertEqual(job["count_delta"], 1000)
        self.assertGreater(lock["bytes_delta"], job["bytes_delta"])
        self.assertEqual(d["suspect"]["type"], "__main__.Job")
        line = likely_line(self.text(a, b))
        self.assertIsNotNone(line)
        self.assertIn("__main__.Job", line)
        self.assertNotIn("_thread.lock", line)

    def test_the_swapped_pair_does_not_name_the_lock(self):
        a, b = self.pair()
        d = diff_json(b, a)
        self.assertIsNone(d["suspect"])
        line = likely_line(self.text(b, a))
        self.assertTrue(line is None or "_thread.lock" not in line, line)

    def test_the_snapshot_says_where_types_come_from(self):
        _a, b = self.pair()
        doc = load_snap(b)
        strings = doc["strings"]
        origin = {strings[row[0]]: strings[row[3]] for row in doc["types"] if len(row) > 3}
        self.assertEqual(origin.get("_thread.lock"), "builtin")
        self.assertEqual(origin.get("__main__.Job"), "user")
        self.assertEqual(origin.get("dict"), "builtin")
        # Every frame the Python agent writes says it is Python's.
        self.assertTrue(doc["frames"])
        for f in doc["frames"]:
            self.assertEqual(strings[f[5]], "python", f)
        d = diff_json(self.record("c.snap", 1000), b)
        job = find(d["types"], name="__main__.Job")
        self.assertTrue(job["sites"])
        self.assertEqual({f.get("kind") for f in job["sites"][0]["frames"]}, {"python"})

    def test_snapshots_without_origins_judge_by_name(self):
        a, b = self.pair()
        a0, b0 = self.without_origins(a, "a0.snap"), self.without_origins(b, "b0.snap")
        d = diff_json(a0, b0)
        self.assertEqual(d["suspect"]["type"], "__main__.Job")
        self.assertIsNone(diff_json(b0, a0)["suspect"])


if __name__ == "__main__":
    harness.main()
