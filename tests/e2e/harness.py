"""Shared pieces of the end-to-end tests: where leakdiff is, how to run it,
how to read .snap files, and a unittest runner that speaks TAP so meson
counts every case.

The tests run the real binary on real programs. LEAKDIFF names the binary
and LEAKDIFF_SOURCE the source tree (meson sets both); LEAKDIFF_TEST_PYTHON
picks the interpreter to record (default: python3 on PATH).
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("LEAKDIFF_SOURCE") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
LEAKDIFF = os.environ.get("LEAKDIFF") or os.path.join(SOURCE, "build", "cli", "leakdiff")
PYTHON = os.environ.get("LEAKDIFF_TEST_PYTHON") or shutil.which("python3") or sys.executable
EXAMPLES = os.path.join(SOURCE, "examples", "python")
DATA = os.path.join(SOURCE, "tests", "data")


def program_env(extra=None):
    """The environment programs under test get: this one without the
    harness's own settings, which are not the programs' business, plus
    `extra`."""
    env = dict(os.environ)
    for name in ("NO_COLOR", "LEAKDIFF", "LEAKDIFF_SOURCE", "LEAKDIFF_TEST_PYTHON", "LEAKDIFF_SANITIZED"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def ext_built(name, python=PYTHON):
    """Whether the build tree beside LEAKDIFF holds the C accelerator
    `name` (_census, _sampler) built for `python`, and it loads there (the
    sampler refuses interpreters whose frames it does not know)."""
    ext_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(LEAKDIFF))),
                           "agents", "python", "ext")
    r = run([python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import " + name, ext_dir])
    return r.returncode == 0


def run(args, env=None, cwd=None, timeout=120, input=None):
    """Runs a command, returning the CompletedProcess with text output."""
    return subprocess.run(args, env=program_env(env), cwd=cwd, timeout=timeout, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, errors="surrogateescape")


def leakdiff(*args, **kw):
    return run([LEAKDIFF] + [str(a) for a in args], **kw)


def load_snap(path):
    with gzip.open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def source_line(path, marker):
    """The line number of the line holding marker (a comment in an example)."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if marker in line:
                return n
    raise AssertionError("%s not found in %s" % (marker, path))


def diff_json(before, after, *extra):
    r = leakdiff("diff", "--format=json", "--top=0", *extra, before, after)
    if r.returncode != 0:
        raise AssertionError("diff failed (%d): %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


def find(rows, **want):
    """The first row whose fields equal want, or None."""
    for row in rows:
        if all(row.get(k) == v for k, v in want.items()):
            return row
    return None


class TempDirCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="leakdiff-e2e-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)


class _TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, extra=""):
        self.n += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, test.id(), extra), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def _fail(self, test, err, kind):
        self._line(False, test)
        text = self._exc_info_to_string(err, test)
        for line in text.rstrip().splitlines():
            print("# " + line)
        sys.stderr.write("%s: %s\n%s\n" % (kind, test.id(), text))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, "ERROR")

    def addSubTest(self, test, subtest, err):
        # A failing subtest fails its test; report it once, when the test stops.
        super().addSubTest(test, subtest, err)
        if err is not None:
            text = self._exc_info_to_string(err, test)
            self._sub_failures.setdefault(test.id(), []).append((str(subtest), text))

    def startTest(self, test):
        super().startTest(test)
        if not hasattr(self, "_sub_failures"):
            self._sub_failures = {}

    def stopTest(self, test):
        super().stopTest(test)
        failures = self._sub_failures.pop(test.id(), None)
        if failures:
            self._line(False, test)
            for name, text in failures:
                print("# " + name)
                for line in text.rstrip().splitlines():
                    print("# " + line)
                sys.stderr.write("FAIL: %s\n%s\n" % (name, text))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, " # SKIP " + reason)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def main():
    """Runs the calling module's tests and prints TAP."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])
    # LEAKDIFF_TESTS=Class,Class.test_name runs only the tests whose id
    # contains one of those names (scripts/mutate uses it to run the few
    # tests of a slow file that a mutation concerns).
    only = [w for w in os.environ.get("LEAKDIFF_TESTS", "").split(",") if w]
    if only:
        suite = unittest.TestSuite(t for t in _flatten(suite) if any(w in t.id() for w in only))
    print("1..%d" % suite.countTestCases(), flush=True)
    result = _TapResult()
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)
