#!/usr/bin/env python3
"""The native agent's hooks on calls that fail or do nothing, through the
real `leakdiff record`: prog_errors makes realloc, reallocarray,
posix_memalign and aligned_alloc fail, calls realloc(p, 0) and free(NULL),
and checks glibc's return values and errno itself. Here: exact live counts
and bytes per allocating line in the snapshot it asks for and in the one at
exit, and the same printed results as a run without the agent."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import TempDirCase, leakdiff, load_snap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.environ.get("NATIVE_PROG_ERRORS")
SOURCE = os.path.join(HERE, "prog_errors.c")


def live_at(doc, marker):
    """(count, bytes) of the live blocks whose innermost frame is the line
    of prog_errors.c holding marker."""
    line = harness.source_line(SOURCE, "/* %s */" % marker)
    count = size = 0
    for c, b, frames in doc["sites"]:
        fr = doc["frames"][frames[0]]
        if fr[1] == line and doc["strings"][fr[0]].endswith("prog_errors.c"):
            count += c
            size += b
    return count, size


def lines_with(marker):
    with open(SOURCE) as f:
        return [n for n, text in enumerate(f, 1) if "/* %s */" % marker in text]


class AgentErrors(TempDirCase):
    def setUp(self):
        super().setUp()
        self.out = self.path("e.snap")
        self.run_ = leakdiff("record", "-o", self.out, "--", PROG, cwd=self.tmp)
        self.assertEqual(self.run_.returncode, 0, self.run_.stderr)

    def test_same_results_as_glibc_alone(self):
        plain = harness.run([PROG])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(self.run_.stdout, plain.stdout)
        self.assertEqual(len(self.run_.stdout.splitlines()), 4, self.run_.stdout)

    def test_snapshot_files(self):
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")), ["e.1.snap", "e.snap"])
        self.assertEqual(load_snap(self.path("e.1.snap"))["meta"]["label"], "after-failures")

    def test_failed_realloc_keeps_the_block(self):
        self.assertEqual(live_at(load_snap(self.path("e.1.snap")), "KEEP-SITE"), (100, 4000))
        self.assertEqual(live_at(load_snap(self.out), "KEEP-SITE"), (50, 2000))

    def test_reallocarray_overflow_keeps_the_block(self):
        for path in (self.path("e.1.snap"), self.out):
            self.assertEqual(live_at(load_snap(path), "ARRAY-SITE"), (20, 960), path)

    def test_failed_posix_memalign_leaves_the_out_pointer_alone(self):
        for path in (self.path("e.1.snap"), self.out):
            self.assertEqual(live_at(load_snap(path), "ALIGN-SITE"), (10, 560), path)

    def test_realloc_to_zero_frees(self):
        for path in (self.path("e.1.snap"), self.out):
            self.assertEqual(live_at(load_snap(path), "ZERO-SITE"), (0, 0), path)

    def test_bad_arguments_record_nothing(self):
        self.assertEqual(len(lines_with("BADALIGN-SITE")), 5)
        for path in (self.path("e.1.snap"), self.out):
            doc = load_snap(path)
            for line in lines_with("BADALIGN-SITE"):
                for c, _b, frames in doc["sites"]:
                    fr = doc["frames"][frames[0]]
                    self.assertFalse(fr[1] == line and doc["strings"][fr[0]].endswith("prog_errors.c"),
                                     (path, line, c))

    def test_nothing_else_of_ours_is_live(self):
        """The four sites above are all the program's own live blocks."""
        for path, want in ((self.path("e.1.snap"), 130), (self.out, 80)):
            doc = load_snap(path)
            ours = sum(c for c, _b, frames in doc["sites"]
                       if doc["strings"][doc["frames"][frames[0]][0]].endswith("prog_errors.c"))
            self.assertEqual(ours, want, path)


if __name__ == "__main__":
    harness.main()
