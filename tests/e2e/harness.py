"""Shared pieces of the end-to-end tests: where leakdiff is, how to run it,
how to read .snap files, and a unittest runner that speaks TAP so meson
counts every case.

The tests run the real binary on real programs. LEAKDIFF names the binary
and LEAKDIFF_SOURCE the source tree (meson sets both); LEAKDIFF_TEST_PYTHON
picks the interpreter to record (default: python3 on PATH).
"""
import atexit
import contextlib
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
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


def build_root():
    """The build tree LEAKDIFF was built in."""
    return os.path.dirname(os.path.dirname(os.path.abspath(LEAKDIFF)))


def real_python(python):
    """The interpreter binary that `python` runs (through a pyenv shim, say),
    for valgrind, which does not follow a wrapper's exec; None when it does
    not start."""
    r = run([python, "-c", "import sys; print(sys.executable)"])
    return (r.stdout.strip() or None) if r.returncode == 0 else None


_agent_dirs = {}
_agent_lock = threading.Lock()


def agent_dir_for(python):
    """A directory for LEAKDIFF_AGENT_DIR in which the Python agent comes
    with its C accelerators built for `python` (any interpreter with its
    headers installed, not only the one meson built them for): the agent's
    sources are linked in from the source tree and the extensions compiled
    with cc, as agents/python/ext/meson.build would, into a temporary
    directory removed when this process exits. Returns (directory, None),
    or (None, why not) when `python` has no headers or the extensions do
    not build or load there. Built once per interpreter."""
    with _agent_lock:
        if python not in _agent_dirs:
            _agent_dirs[python] = _build_agent_dir(python)
        return _agent_dirs[python]


def _build_agent_dir(python):
    agent_src = os.path.join(SOURCE, "agents", "python")
    probe = run([python, os.path.join(agent_src, "ext", "probe.py")])
    lines = probe.stdout.split("\n")
    if probe.returncode != 0 or len(lines) < 2 or not lines[1]:
        return None, "%s has no Python.h (its -dev package is not installed)" % python
    include, suffix = lines[0], lines[1]
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler to build the extensions for %s" % python
    root = tempfile.mkdtemp(prefix="leakdiff-agent-")
    atexit.register(shutil.rmtree, root, True)
    ext = os.path.join(root, "python", "ext")
    os.makedirs(ext)
    for part in ("leakdiff", "boot"):
        os.symlink(os.path.join(agent_src, part), os.path.join(root, "python", part))
    for name in ("_census", "_sampler"):
        out = os.path.join(ext, "%s.%s" % (name, suffix))
        r = run([cc, "-std=c11", "-O2", "-g", "-fPIC", "-shared", "-Wno-pedantic",
                 "-I" + include, "-I" + os.path.join(SOURCE, "agents", "common"),
                 "-o", out, os.path.join(agent_src, "ext", name[1:] + ".c")], timeout=300)
        if r.returncode != 0:
            return None, "%s does not build for %s: %s" % (name, python, r.stderr[-300:])
        loads = run([python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import " + name, ext])
        if loads.returncode != 0:
            return None, "%s does not load in %s: %s" % (name, python, loads.stderr[-300:])
    return root, None


_interpreters = None


def python_candidates():
    """Every Python 3 interpreter this machine has that a test might use, as
    (binary, (major, minor)): PYTHON first, then the system's, then the
    versioned names on PATH and pyenv's versions, newest first; each a real
    binary (not a shim), named once. Asked once per process."""
    global _interpreters
    if _interpreters is not None:
        return _interpreters
    names = [PYTHON, "/usr/bin/python3"]
    for minor in range(20, 5, -1):
        names += [shutil.which("python3.%d" % minor) or "", "/usr/bin/python3.%d" % minor]
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    names += glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3"))
    found = []
    for n in names:
        if not n or not os.access(n, os.X_OK) and not shutil.which(n):
            continue
        r = run([n, "-c", "import sys; print(sys.version_info[0], sys.version_info[1], sys.executable)"])
        parts = r.stdout.split(None, 2)
        if r.returncode != 0 or len(parts) != 3:
            continue
        found.append((parts[2].strip(), (int(parts[0]), int(parts[1]))))
    first, rest = found[:2], sorted(found[2:], key=lambda f: f[1], reverse=True)
    seen, _interpreters = set(), []
    for real, version in first + rest:
        if os.path.realpath(real) not in seen:
            seen.add(os.path.realpath(real))
            _interpreters.append((real, version))
    return _interpreters


def python_with_agent(at_least=(3, 0)):
    """An interpreter of version `at_least` or newer for which the agent's C
    accelerators load, and the environment that gives them to `leakdiff
    record`: (python, env) with env empty when they are the build tree's,
    else naming an agent_dir_for() it. (None, why) when there is none."""
    candidates = python_candidates()
    own = real_python(PYTHON)
    for python, version in candidates:
        if python == own and version >= at_least and ext_built("_sampler") and ext_built("_census"):
            return PYTHON, {}
    reasons = []
    for python, version in candidates:
        if version < at_least:
            continue
        root, why = agent_dir_for(python)
        if root:
            return python, {"LEAKDIFF_AGENT_DIR": root}
        reasons.append(why)
    return None, "no Python %d.%d or newer with its headers on this machine%s" % (
        at_least[0], at_least[1], (" (" + "; ".join(reasons) + ")") if reasons else "")


def numpy_python():
    """(interpreter, environment for leakdiff record) for the first
    interpreter that imports numpy, with the agent's extensions built for
    it when it is not PYTHON's; (None, why not) when there is none."""
    reasons = []
    for python, _ in python_candidates():
        r = run([python, "-c", "import numpy"])
        if r.returncode != 0:
            reasons.append("%s has no numpy" % python)
            continue
        if python == real_python(PYTHON) and ext_built("_sampler") \
                and ext_built("_census"):
            return python, {}
        root, why = agent_dir_for(python)
        if root:
            return python, {"LEAKDIFF_AGENT_DIR": root}
        reasons.append(why)
    return None, "; ".join(reasons) or "no interpreter found"


def run(args, env=None, cwd=None, timeout=120, input=None):
    """Runs a command, returning the CompletedProcess with text output."""
    return subprocess.run(args, env=program_env(env), cwd=cwd, timeout=timeout, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, errors="surrogateescape")


_wrapper = threading.local()


def leakdiff(*args, **kw):
    """Runs LEAKDIFF with `args`, under the commands wrapped() put in front
    of it in this thread, if any."""
    prefix = list(getattr(_wrapper, "prefix", ()))
    return run(prefix + [LEAKDIFF] + [str(a) for a in args], **kw)


@contextlib.contextmanager
def wrapped(prefix):
    """Within the block, leakdiff() in this thread runs under the command
    `prefix` (valgrind, setpriv, ...), which goes in front of any wrapper
    already in force."""
    old = getattr(_wrapper, "prefix", ())
    _wrapper.prefix = list(prefix) + list(old)
    try:
        yield
    finally:
        _wrapper.prefix = old


def without_file_capabilities():
    """A command prefix that runs a program as root without the
    capabilities that let root read any file (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH), so that permission checks apply to it; None when
    this is not root or setpriv (util-linux) cannot drop them here."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = run(prefix + ["true"])
    return prefix if probe.returncode == 0 else None


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
        # Only the first line goes on the TAP line; the rest (a program's
        # output, say) as comments, where a line starting "ok" or "not ok"
        # cannot pass for a result.
        super().addSkip(test, reason)
        lines = reason.splitlines() or [""]
        self._line(True, test, " # SKIP " + lines[0])
        for line in lines[1:]:
            print("# " + line, flush=True)


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
