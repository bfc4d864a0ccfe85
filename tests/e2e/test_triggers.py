#!/usr/bin/env python3
"""Snapshot triggers of Python programs through the real `leakdiff record`:
the peak snapshot of --peak, with exact counts."""
import os
import re
import textwrap

import harness
from harness import PYTHON, TempDirCase, leakdiff, load_snap

# Rises to N Node objects, holds them until the peak snapshot is on disk
# (the agent's thread takes it once the live bytes stop rising), frees
# them all and rises again to M < N.
PEAK_PROGRAM = textwrap.dedent("""\
    import os, sys, time
    class Node:
        __slots__ = ("n",)
    n, m, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    keep = []
    for i in range(n):
        node = Node()  # PEAK-SITE
        keep.append(node)
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    keep.clear()
    for i in range(m):
        node = Node()  # AGAIN-SITE
        keep.append(node)
    print("kept", len(keep))
    """)


def site_count(doc, filename, line):
    """Blocks of the sites whose innermost frame is filename:line."""
    total = 0
    for count, _size, frames in doc["sites"]:
        fr = doc["frames"][frames[0]]
        if doc["strings"][fr[0]] == filename and fr[1] == line:
            total += count
    return total


class Peak(TempDirCase):
    def run_peak(self, *opts):
        prog = self.path("peak.py")
        with open(prog, "w") as f:
            f.write(PEAK_PROGRAM)
        line = harness.source_line(prog, "PEAK-SITE")
        again = harness.source_line(prog, "AGAIN-SITE")
        out, peak_file = self.path("run.snap"), self.path("run.peak.snap")
        r = leakdiff("record", "--peak", *opts, "-o", out, "--", PYTHON, prog, "20000", "10000", peak_file,
                     cwd=self.tmp, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "kept 10000\n")
        self.assertIn("leakdiff: wrote %s (snapshot " % peak_file, r.stderr)
        peak = load_snap(peak_file)
        self.assertEqual((peak["meta"]["trigger"], peak["meta"]["label"]), ("peak", "peak"))
        self.assertEqual(site_count(peak, prog, line), 20000, r.stderr)
        self.assertEqual(site_count(peak, prog, again), 0)
        end = load_snap(out)
        self.assertEqual(end["meta"]["trigger"], "exit")
        self.assertEqual(site_count(end, prog, line), 0)
        self.assertEqual(site_count(end, prog, again), 10000)
        # Only the peak file and the at-exit file: nothing numbered.
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")),
                         ["run.peak.snap", "run.snap"])
        # The at-exit snapshot comes last; the peak file is the last peak.
        wrote = re.findall(r"^leakdiff: wrote (\S+) \(snapshot (\d+), (\w+)", r.stderr, re.M)
        self.assertEqual(wrote[-1], (out, str(end["meta"]["seq"]), "exit"))
        last_peak = [w for w in wrote if w[0] == peak_file][-1]
        self.assertEqual(int(last_peak[1]), peak["meta"]["seq"])

    def test_peak_on_the_hooks(self):
        self.run_peak()

    def test_peak_with_tracemalloc(self):
        self.run_peak("--tracemalloc")


if __name__ == "__main__":
    harness.main()
