#!/usr/bin/env python3
"""The tool that finds leaks has none: diff and show run under valgrind
memcheck over the fixtures, good and bad (every rejected-file case of
test_cli.py, every fuzz regression input), with zero errors and zero
definite or indirect leaks, and the Python agent's C extensions run inside
an interpreter under memcheck with zero errors (one that is clean on its
own: Debian's python3 where the one on PATH is not). Skipped in sanitizer
builds (valgrind and ASan do not mix) and where valgrind is not installed.
Valgrind processes run side by side, one per core, to keep this short."""
import concurrent.futures
import gzip
import os
import shutil
import subprocess
import unittest

import harness
from harness import DATA, LEAKDIFF, SOURCE, TempDirCase

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--track-fds=no", "-q"]
JOBS = max(2, min(os.cpu_count() or 2, 4))
FUZZ_REGRESSIONS = os.path.join(SOURCE, "tests", "fuzz", "regressions")


def in_parallel(fn, items):
    """fn over items, JOBS at a time; the results in the order of items."""
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        return list(pool.map(fn, items))


class ValgrindCase(TempDirCase):
    def setUp(self):
        super().setUp()
        if os.environ.get("LEAKDIFF_SANITIZED"):
            self.skipTest("sanitizer build")
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")


class Memcheck(ValgrindCase):

    def memcheck(self, cmd, cwd=SOURCE, env=None):
        return subprocess.run(VALGRIND + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, errors="surrogateescape", cwd=cwd,
                              env=harness.program_env(env), timeout=300)

    def check_all(self, cases):
        """Runs leakdiff under memcheck once per (args, expected status),
        side by side."""
        results = in_parallel(lambda c: self.memcheck([LEAKDIFF] + list(c[0])), cases)
        for (args, code), r in zip(cases, results):
            with self.subTest(args=args):
                self.assertNotEqual(r.returncode, 99, r.stderr)
                self.assertEqual(r.returncode, code, r.stderr)
                self.assertNotIn("==", r.stderr.replace("leakdiff:", ""), r.stderr)

    def test_reports(self):
        b, m, a, mv = (os.path.join(DATA, n) for n in ("before.snap", "middle.snap", "after.snap", "moved.snap"))
        sup = os.path.join(DATA, "suppressions.txt")
        self.check_all([
            (("diff", b, a), 0),
            (("diff", "-v", "--format=json", "--top=0", b, a), 0),
            (("diff", "--format=markdown", "--max-total-growth=1%", "--max-site-growth=1KiB",
              "--max-type-growth=10", "--suppress=" + sup, b, a), 1),
            (("diff", b, m, a), 0),
            (("diff", "--match=exact", "--depth=1", b, mv), 0),
            (("diff", "--strip-prefix=/ci", b, mv), 0),
            (("show", a), 0),
            (("show", "--format=json", "--top=0", a), 0),
        ])

    def test_bad_inputs(self):
        bad = self.path("bad.snap")
        with open(bad, "wb") as f:
            f.write(gzip.compress(b'{"format":"leakdiff-snapshot","version":1,"strings":["a"],'
                                  b'"frames":[[0,1,0]],"sites":[[1,2,[0,5]]]}'))
        cut = self.path("cut.snap")
        with open(os.path.join(DATA, "after.snap"), "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2])
        self.check_all([
            (("show", bad), 2),
            (("diff", os.path.join(DATA, "before.snap"), cut), 2),
            (("show", self.path("missing.snap")), 2),
            (("diff", "--top=x"), 2),
        ])

    def test_rejected_files(self):
        """Every rejected-file case of test_cli.py, run again with leakdiff
        under memcheck: its own assertions (exit status 2, nothing on
        standard output, one line on standard error) then also mean no
        memory error and no leak, as valgrind would fail the status or add
        lines."""
        import test_cli
        loader = unittest.defaultTestLoader
        tests = [t for cls in (test_cli.BadSnapshots, test_cli.Suppressions)
                 for t in loader.loadTestsFromTestCase(cls)]
        self.assertGreater(len(tests), 20)

        def one(test):
            result = unittest.TestResult()
            with harness.wrapped(VALGRIND):
                test.run(result)
            return result

        for test, result in zip(tests, in_parallel(one, tests)):
            with self.subTest(test=test.id()):
                problems = result.failures + result.errors
                self.assertEqual(problems, [], "\n".join(text for _, text in problems))
                self.assertEqual(result.testsRun, 1)

    def test_fuzz_regressions(self):
        """Every input in tests/fuzz/regressions/ through its target's
        replay binary under memcheck, and the snapshot ones through show and
        diff too, gzipped as a .snap file is: under memcheck leakdiff says
        and prints the same as without it."""
        replay_dir = os.path.join(harness.build_root(), "tests", "fuzz")
        cases = []
        for target in sorted(os.listdir(FUZZ_REGRESSIONS)):
            folder = os.path.join(FUZZ_REGRESSIONS, target)
            for name in sorted(os.listdir(folder)):
                if name.startswith("."):
                    continue
                path = os.path.join(folder, name)
                cases.append(([os.path.join(replay_dir, "replay-" + target), path], None))
                if target == "fuzz_snap":
                    snap = self.path(name + ".snap")
                    with open(path, "rb") as f, open(snap, "wb") as out:
                        out.write(gzip.compress(f.read(), mtime=0))
                    good = os.path.join(DATA, "before.snap")
                    for args in (["show", "--top=0", snap], ["show", "--format=json", snap],
                                 ["diff", "--format=markdown", "--top=0", good, snap],
                                 ["diff", "-v", snap, good]):
                        cases.append(([LEAKDIFF] + args, harness.leakdiff(*args)))
        self.assertTrue(cases)
        # The replays write report files named from their input: in a scratch directory.
        results = in_parallel(lambda c: self.memcheck(c[0], cwd=self.tmp), cases)
        for (cmd, plain), r in zip(cases, results):
            with self.subTest(cmd=cmd):
                self.assertNotEqual(r.returncode, 99, r.stderr)
                self.assertNotIn("==", r.stderr.replace("leakdiff:", ""), r.stderr)
                if plain is None:
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                else:
                    self.assertIn(plain.returncode, (0, 2), plain.stderr)
                    self.assertEqual((r.returncode, r.stdout, r.stderr),
                                     (plain.returncode, plain.stdout, plain.stderr))

    def test_mixed_recording_and_reports(self):
        """`leakdiff record --native` (issue 12): the recorder joining the
        two agents' documents and symbolising the native half, under
        memcheck (the recorded program runs natively: valgrind does not
        follow the exec), and diff and show of its snapshots, whose reports
        fold interpreter frames and split the totals."""
        import test_mixed
        python, env = harness.python_with_agent()
        if python is None:
            self.skipTest(env)
        env, why = test_mixed.setup_for(python, env)
        if env is None:
            self.skipTest(why)

        def record(n):
            out = self.path("mixed-%d.snap" % n)
            r = subprocess.run(VALGRIND + [LEAKDIFF, "record", "-q", "--native", "-o", out, "--", python,
                                           test_mixed.APP, "ext", str(n)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               errors="surrogateescape", cwd=self.tmp, env=harness.program_env(env),
                               timeout=600)
            return out, r

        (a, ra), (b, rb) = in_parallel(record, [50, 150])
        for r in (ra, rb):
            self.assertNotEqual(r.returncode, 99, r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("==", r.stderr.replace("leakdiff:", ""), r.stderr)
        rows = test_mixed.sites_where(harness.load_snap(b), test_mixed.copy_site)
        self.assertEqual([(row[0], row[1]) for row in rows], [(150, 150 * test_mixed.TEXT)])
        self.check_all([
            (("diff", a, b), 0),
            (("diff", "-v", "--format=json", "--top=0", a, b), 0),
            (("diff", "--format=markdown", "-v", a, b), 0),
            (("show", "-v", b), 0),
            (("show", "--format=json", b), 0),
        ])


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
        prog = self.write_program()
        env = {"PYTHONMALLOC": "malloc"}
        python, agent_env, why = self.clean_interpreter(prog, env)
        if python is None:
            self.skipTest(why)
        env.update(agent_env)
        for opts in ((), ("--sample=1KiB",)):
            with self.subTest(python=python, opts=opts):
                out = self.path("vg.snap")
                r = harness.leakdiff("record", "--runtime=python", "-o", out, *opts, "--",
                                     *AGENT_VALGRIND, python, prog, env=env, timeout=600)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("==", r.stderr.replace("leakdiff:", ""), r.stderr)
                doc = harness.load_snap(out)
                self.assertEqual(doc["meta"]["tracer"], "hooks")
                names = [doc["strings"][t[0]] for t in doc["types"]]
                self.assertEqual(doc["types"][names.index("__main__.Item")][1], 500)

    def clean_interpreter(self, prog, env):
        """The first interpreter that runs `prog` without the agent under
        memcheck with no error, among PYTHON (with the build tree's
        extensions) and the machine's others (with extensions built for them
        by harness.agent_dir_for): (python, environment for leakdiff
        record, None), or (None, None, why not). Interpreters are binaries,
        not wrappers such as pyenv's shims, whose exec valgrind would not
        follow. Tried two at a time; a pyenv build is seldom clean, Debian's
        python3 is."""
        tried = []
        for python, _ in harness.python_candidates():
            if python == harness.real_python(harness.PYTHON) and harness.ext_built("_sampler") \
                    and harness.ext_built("_census"):
                tried.append((python, {}))
                continue
            root, _ = harness.agent_dir_for(python)
            if root:
                tried.append((python, {"LEAKDIFF_AGENT_DIR": root}))
            if len(tried) == JOBS:
                break

        def plain(candidate):
            return harness.run(AGENT_VALGRIND + [candidate[0], prog],
                               env=dict(env, PYTHONPATH=os.path.join(SOURCE, "agents", "python")), timeout=600)

        reasons = []
        for (python, agent_env), r in zip(tried, in_parallel(plain, tried)):
            if r.returncode == 0:
                return python, agent_env, None
            reasons.append("%s is not memcheck-clean on its own: %s" % (python, r.stderr[-300:]))
        return None, None, "; ".join(reasons) or "no Python interpreter with the agent's extensions"

    def write_program(self):
        prog = self.path("vg.py")
        with open(prog, "w") as f:
            f.write(AGENT_PROGRAM)
        return prog


if __name__ == "__main__":
    harness.main()
