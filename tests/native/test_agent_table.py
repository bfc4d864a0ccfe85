#!/usr/bin/env python3
"""The native agent's live table on one thread, through the real `leakdiff
record`: prog_table allocates 200,000 small blocks, frees them in a
pseudo-random order between snapshots, and hands freed addresses out again.
Every snapshot must hold exactly the blocks the program says are live, by
site, in count and bytes: a free the table fails to find, or an entry a
deletion loses, shows as a block too many."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import TempDirCase, leakdiff, load_snap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.environ.get("NATIVE_PROG_TABLE")
SOURCE = os.path.join(HERE, "prog_table.c")
N = 200000


def live_at(doc, marker):
    line = harness.source_line(SOURCE, marker)
    count = size = 0
    for c, b, frames in doc["sites"]:
        fr = doc["frames"][frames[0]]
        if fr[1] == line and doc["strings"][fr[0]].endswith("prog_table.c"):
            count += c
            size += b
    return count, size


class LiveTable(TempDirCase):
    def test_exact_counts_through_random_frees(self):
        out = self.path("t.snap")
        r = leakdiff("record", "-o", out, "--", PROG, str(N), cwd=self.tmp, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = [line.split() for line in r.stdout.splitlines()]
        self.assertEqual([p[0] for p in printed], ["all", "half", "refill", "few"], r.stdout)
        # The counts follow from N alone; the bytes come from the program.
        counts = [(int(p[1]), int(p[3])) for p in printed]
        self.assertEqual(counts, [(N, 0), (N - N // 2, 0), (N - N // 2 - N // 4, N // 4), (7, 3)])
        files = ["t.%d.snap" % i for i in range(1, 5)]
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")), sorted(files + ["t.snap"]))
        for name, p in zip(files, printed):
            doc = load_snap(self.path(name))
            self.assertEqual(doc["meta"]["label"], p[0])
            self.assertEqual(live_at(doc, "FIRST-SITE"), (int(p[1]), int(p[2])), name)
            self.assertEqual(live_at(doc, "REFILL-SITE"), (int(p[3]), int(p[4])), name)
        doc = load_snap(out)
        last = printed[-1]
        self.assertEqual(live_at(doc, "FIRST-SITE"), (7, int(last[2])))
        self.assertEqual(live_at(doc, "REFILL-SITE"), (3, int(last[4])))


if __name__ == "__main__":
    harness.main()
