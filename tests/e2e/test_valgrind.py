#!/usr/bin/env python3
"""The tool that finds leaks has none: diff and show run under valgrind
memcheck over the fixtures, good and bad, with zero errors and zero
definite or indirect leaks, and the Python agent's C extensions run inside
an interpreter under memcheck with zero errors (where that interpreter is
clean on its own). Skipped in sanitizer builds (valgrind and ASan do not
mix) and where valgrind is not installed."""
import gzip
import os
import shutil
import subprocess

import harness
from harness import DATA, LEAKDIFF, SOURCE, TempDirCase

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--track-fds=no", "-q"]


class ValgrindCase(TempDirCase):
    def setUp(self):
        super().setUp()
        if os.environ.get("LEAKDIFF_SANITIZED"):
            self.skipTest("sanitizer build")
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")


class Memcheck(ValgrindCase):

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


AGENT_PROGRAM = r"""
import threading
import leakdiff

class Item:
    def __init__(self, i):
        self.i = i
        self.name = "item-%d" % i

KEEP = []
def work(n):
    for i in range(n):
        KEEP.append(Item(i))
        d = {"k": [i] * 4, "s": str(i)}
        del d
work(300)
leakdiff.snapshot("mid")
t = threading.Thread(target=work, args=(200,))
t.start()
t.join()
exec(compile("x = [1, 2, 3]", "<snippet>", "exec"), {})
"""

# Memory errors only: an interpreter's own leaks at exit are not the agent's.
AGENT_VALGRIND = ["valgrind", "--error-exitcode=99", "-q", "--leak-check=no", "--track-fds=no"]


class AgentMemcheck(ValgrindCase):
    """The Python agent's C extensions (the allocator hooks, exact and
    sampled, and the census) inside a Python process under memcheck."""

    def test_python_agent_extensions(self):
        for name in ("_sampler", "_census"):
            if not harness.ext_built(name):
                self.skipTest("no %s extension built for %s" % (name, harness.PYTHON))
        # valgrind must run the interpreter itself, not a wrapper such as a
        # pyenv shim, whose exec it would not follow.
        real = harness.run([harness.PYTHON, "-c", "import sys; print(sys.executable)"]).stdout.strip()
        prog = self.write_program()
        env = {"PYTHONMALLOC": "malloc"}
        plain = harness.run(AGENT_VALGRIND + [real, prog],
                            env=dict(env, PYTHONPATH=os.path.join(SOURCE, "agents", "python")))
        if plain.returncode != 0:
            self.skipTest("%s is not memcheck-clean on its own: %s" % (real, plain.stderr[-300:]))
        for opts in ((), ("--sample=1KiB",)):
            with self.subTest(opts=opts):
                out = self.path("vg.snap")
                r = harness.leakdiff("record", "--runtime=python", "-o", out, *opts, "--",
                                     *AGENT_VALGRIND, real, prog, env=env, timeout=600)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("==", r.stderr.replace("leakdiff:", ""), r.stderr)
                doc = harness.load_snap(out)
                self.assertEqual(doc["meta"]["tracer"], "hooks")
                names = [doc["strings"][t[0]] for t in doc["types"]]
                self.assertEqual(doc["types"][names.index("__main__.Item")][1], 500)

    def write_program(self):
        prog = self.path("vg.py")
        with open(prog, "w") as f:
            f.write(AGENT_PROGRAM)
        return prog


if __name__ == "__main__":
    harness.main()
