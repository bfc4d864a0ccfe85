#!/usr/bin/env python3
"""The tool that finds leaks has none: diff and show run under valgrind
memcheck over the fixtures, good and bad, with zero errors and zero
definite or indirect leaks. Skipped in sanitizer builds (valgrind and ASan
do not mix) and where valgrind is not installed."""
import gzip
import os
import shutil
import subprocess
import unittest

import harness
from harness import DATA, LEAKDIFF, SOURCE, TempDirCase

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--track-fds=no", "-q"]


class Memcheck(TempDirCase):
    def setUp(self):
        super().setUp()
        if os.environ.get("LEAKDIFF_SANITIZED"):
            self.skipTest("sanitizer build")
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")

    def check(self, *args, code=0):
        r = subprocess.run(VALGRIND + [LEAKDIFF] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, cwd=SOURCE, timeout=300)
        self.assertNotEqual(r.returncode, 99, r.stderr)
        self.assertEqual(r.returncode, code, r.stderr)
        self.assertNotIn("==", r.stderr.replace("leakdiff:", ""), r.stderr)

    def test_reports(self):
        b, m, a, mv = (os.path.join(DATA, n) for n in ("before.snap", "middle.snap", "after.snap", "moved.snap"))
        sup = os.path.join(DATA, "suppressions.txt")
        self.check("diff", b, a)
        self.check("diff", "-v", "--format=json", "--top=0", b, a)
        self.check("diff", "--format=markdown", "--max-total-growth=1%", "--max-site-growth=1KiB",
                   "--max-type-growth=10", "--suppress=" + sup, b, a, code=1)
        self.check("diff", b, m, a)
        self.check("diff", "--match=exact", "--depth=1", b, mv)
        self.check("diff", "--strip-prefix=/ci", b, mv)
        self.check("show", a)
        self.check("show", "--format=json", "--top=0", a)

    def test_bad_inputs(self):
        bad = self.path("bad.snap")
        with open(bad, "wb") as f:
            f.write(gzip.compress(b'{"format":"leakdiff-snapshot","version":1,"strings":["a"],'
                                  b'"frames":[[0,1,0]],"sites":[[1,2,[0,5]]]}'))
        self.check("show", bad, code=2)
        cut = self.path("cut.snap")
        with open(os.path.join(DATA, "after.snap"), "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2])
        self.check("diff", os.path.join(DATA, "before.snap"), cut, code=2)
        self.check("show", self.path("missing.snap"), code=2)
        self.check("diff", "--top=x", code=2)


if __name__ == "__main__":
    harness.main()
