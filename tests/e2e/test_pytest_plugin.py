"""The pytest plugin (agents/python/leakdiff/pytest_plugin.py) on the fixture
suite of tests/pytest_plugin/, run by pytest in a subprocess: every leaky
test fails naming its type and its line, the warm-up cache and every clean
test pass; the marker alone, the comparison without the leakdiff program,
the entry point, pytest-xdist and a run under `leakdiff record` work too,
and this project's documentation tests pass under the plugin.

pytest is run by every interpreter that has it (Debian's python3 with
python3-pytest, which scripts/setup installs; the interpreter the
extensions are built for, with pytest of its own or, at Debian's
python3's major.minor version, with Debian's), the whole suite by the
first, the leaky tests by the others.
"""
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FIXTURES = os.path.join(harness.SOURCE, "tests", "pytest_plugin")
LEAKY_FILE = os.path.join(FIXTURES, "test_leaky.py")
AGENT_PATH = os.path.join(harness.SOURCE, "agents", "python")

# test name -> (type that must be named, marker of the line that leaks)
LEAKY = {
    "test_module_cache": ("test_leaky.CacheEntry", "leak: module-cache"),
    "test_class_registry": ("test_leaky.Handler", "leak: class-registry"),
    "test_unbounded_lru_cache": ("test_leaky.Parsed", "leak: lru-cache"),
    "test_logger_per_call": ("logging.Logger", "leak: logger"),
    "test_one_object_per_run": ("test_leaky.Token", "leak: one-per-run"),
}
WARM_UP = "test_warm_up_cache_passes"


def _has(python, module):
    return harness.run([python, "-c", "import " + module]).returncode == 0


_pythons = None
# Interpreters given Debian's pytest (pure Python) for want of their own:
# python -> the directory added to their path.
_borrowed = {}
DEBIAN_PACKAGES = "/usr/lib/python3/dist-packages"


def _borrow_pytest(python):
    """Lets an interpreter without pytest use Debian's, when Debian's python3
    is of the same major.minor version (the interpreter the extensions are
    built for, from pyenv, has no pytest of its own and cannot get one here).
    Returns True when pytest then imports."""
    debian = "/usr/bin/python3"
    if not os.path.isdir(os.path.join(DEBIAN_PACKAGES, "pytest")) or not os.path.exists(debian):
        return False
    ver = "import sys; print(sys.version_info[:2])"
    mine, theirs = harness.run([python, "-c", ver]), harness.run([debian, "-c", ver])
    if mine.returncode or mine.stdout != theirs.stdout:
        return False
    r = harness.run([python, "-c", "import pytest"], env={"PYTHONPATH": DEBIAN_PACKAGES})
    if r.returncode:
        return False
    _borrowed[python] = DEBIAN_PACKAGES
    return True


def pytest_pythons():
    """[(python, extension directory or None)] for every interpreter with
    pytest, the one the build tree's extensions load in first."""
    global _pythons
    if _pythons is not None:
        return _pythons
    build_ext = os.path.join(harness.build_root(), "agents", "python", "ext")
    found, borrowing = [], []
    for python, _version in harness.python_candidates():
        if not _has(python, "pytest"):
            borrowing.append(python)
            continue
        if harness.ext_built("_sampler", python) and harness.ext_built("_census", python):
            found.insert(0, (python, build_ext))
            continue
        root, _why = harness.agent_dir_for(python)
        found.append((python, os.path.join(root, "python", "ext") if root else None))
    # Those with a borrowed pytest come last: the whole suite runs on an
    # interpreter with pytest of its own, the leaky tests on these too.
    for python in borrowing:
        if found and _borrow_pytest(python):
            if harness.ext_built("_sampler", python) and harness.ext_built("_census", python):
                found.append((python, build_ext))
            else:
                root, _why = harness.agent_dir_for(python)
                found.append((python, os.path.join(root, "python", "ext") if root else None))
    _pythons = found
    return found


def run_pytest(python, ext_dir, args, tmp, extra_env=None, plugin=True, timeout=1500):
    """Runs pytest on the fixtures; returns (CompletedProcess, {test name:
    (outcome, failure text)}) read from its JUnit XML."""
    xml = os.path.join(tmp, "junit.xml")
    if os.path.exists(xml):
        os.unlink(xml)
    path = AGENT_PATH + (os.pathsep + _borrowed[python] if python in _borrowed else "")
    env = {"PYTHONPATH": path, "LEAKDIFF": harness.LEAKDIFF,
           "PYTHONDONTWRITEBYTECODE": "1"}
    if ext_dir:
        env["LEAKDIFF_EXT_DIR"] = ext_dir
    else:
        env["LEAKDIFF_PURE"] = "1"
    if plugin:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.update(extra_env or {})
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", FIXTURES,
           "--junitxml", xml, "-o", "junit_family=xunit1"]
    if plugin:
        cmd += ["-p", "leakdiff.pytest_plugin"]
    r = harness.run(cmd + args, env=env, cwd=tmp, timeout=timeout)
    results = {}
    if os.path.exists(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = case.get("name")
            cls = case.get("classname", "")
            if "TestClassBased" in cls:
                name = "TestClassBased." + name
            outcome, text = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    text = (child.get("message") or "") + "\n" + (child.text or "")
            results[name] = (outcome, text)
    return r, results


class PluginCase(harness.TempDirCase):
    def pythons(self):
        found = pytest_pythons()
        if not found:
            self.skipTest("no interpreter here has pytest (scripts/setup installs python3-pytest)")
        return found

    def assert_leaks(self, results, output, names=LEAKY):
        for name in names:
            typ, marker = LEAKY[name]
            outcome, text = results.get(name, ("missing", ""))
            self.assertEqual(outcome, "failure", "%s should fail:\n%s" % (name, output[-3000:]))
            line = harness.source_line(LEAKY_FILE, marker)
            self.assertIn("type %s:" % typ, text, name)
            self.assertIn("test_leaky.py:%d " % line, text, name)
            self.assertIn("grew in every one of 4 runs", text, name)


class TestFixtureSuite(PluginCase):
    def test_whole_suite(self):
        """Leaky tests fail with type and line, all the others pass, the
        summary counts them, and the kept snapshots can be diffed."""
        python, ext = self.pythons()[0]
        keep = self.path("kept")
        r, results = run_pytest(python, ext, ["--leakdiff", "--leakdiff-dir", keep, FIXTURES],
                                self.tmp)
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, output[-3000:])
        self.assert_leaks(results, output)
        self.assertEqual(results.get(WARM_UP, ("missing",))[0], "passed", output[-3000:])
        clean = {n: o for n, o in results.items() if n not in LEAKY and n != WARM_UP}
        self.assertGreaterEqual(len(clean), 50)
        failed = {n: t for n, (o, t) in clean.items() if o != "passed"}
        self.assertEqual(failed, {}, "clean tests failed:\n%s" % "\n".join(
            "%s: %s" % (n, t[:1500]) for n, t in failed.items()))
        self.assertIn("%d tests checked, %d leaking" % (len(results), len(LEAKY)), output)
        self.assertIn("(sites from hooks)" if ext else "(sites from tracemalloc)", output)
        kept = sorted(os.listdir(keep))
        self.assertEqual(len(kept), len(LEAKY), kept)
        one = [d for d in kept if d.endswith("test_one_object_per_run")]
        self.assertEqual(len(one), 1, kept)
        snaps = sorted(os.path.join(keep, one[0], f) for f in os.listdir(os.path.join(keep, one[0])))
        self.assertEqual(len(snaps), 5)
        self.assertIn("leakdiff diff " + " ".join(snaps), results["test_one_object_per_run"][1])
        diff = harness.leakdiff("diff", "--format=json", "--top=0", *snaps)
        self.assertEqual(diff.returncode, 0, diff.stderr)
        doc = __import__("json").loads(diff.stdout)
        row = harness.find(doc["types"], name="test_leaky.Token")
        self.assertIsNotNone(row)
        self.assertEqual((row["grew_in"], row["count_delta"]), (4, 4))

    def test_other_interpreters(self):
        """The leaky tests under every other interpreter with pytest."""
        others = self.pythons()[1:]
        if not others:
            self.skipTest("only one interpreter here has pytest")
        for python, ext in others:
            with self.subTest(python=python):
                r, results = run_pytest(python, ext, ["--leakdiff", LEAKY_FILE], self.tmp)
                self.assert_leaks(results, r.stdout + r.stderr)
                self.assertEqual(results[WARM_UP][0], "passed")


class TestOwnTests(PluginCase):
    def test_project_tests_pass(self):
        """This project's own documentation tests, collected by pytest as
        unittest cases and checked: nothing fails."""
        python, ext = self.pythons()[0]
        docs = os.path.join(harness.SOURCE, "tests", "e2e", "test_docs.py")
        r, results = run_pytest(python, ext, ["--leakdiff", docs], self.tmp,
                                extra_env={"LEAKDIFF_SOURCE": harness.SOURCE})
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, output[-3000:])
        self.assertGreater(len(results), 0)
        self.assertIn("%d tests checked, 0 leaking" % len(results), output)


# The runs of a test screened on the allocator hooks see the heap the test
# found frozen (gc.freeze()); after the check it is as it was, and a heap
# the program froze itself is left alone.
SCREENED = """
import gc
import pytest

FROZEN = [None] * 16
RUN = [0]


@pytest.mark.leakdiff
def test_a_checked():
    FROZEN[RUN[0]] = gc.get_freeze_count() > 0
    RUN[0] += 1


def test_b_after_the_check():
    assert gc.get_freeze_count() == 0
    assert FROZEN[:RUN[0]] == [False, True, True, True, True], FROZEN


@pytest.fixture
def frozen_by_the_program():
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.mark.leakdiff
def test_c_program_froze_its_heap(frozen_by_the_program):
    assert gc.get_freeze_count() > 0


def test_d_left_frozen(frozen_by_the_program):
    assert gc.get_freeze_count() > 0
"""


class TestScreen(PluginCase):
    def test_heap_frozen_only_while_screened(self):
        python, ext = self.pythons()[0]
        if not ext:
            self.skipTest("no _sampler extension for %s: nothing is screened" % python)
        path = self.path("test_screened.py")
        with open(path, "w") as f:
            f.write(SCREENED)
        r, results = run_pytest(python, ext, [path], self.tmp)
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, output[-3000:])
        self.assertEqual(sorted(results), ["test_a_checked", "test_b_after_the_check",
                                           "test_c_program_froze_its_heap",
                                           "test_d_left_frozen"])
        self.assertIn("2 tests checked, 0 leaking", output)


class TestModes(PluginCase):
    def test_marker_only(self):
        """Without --leakdiff only marked tests are checked; unmarked leaky
        tests pass."""
        python, ext = self.pythons()[0]
        r, results = run_pytest(python, ext, [
            "-k", "marker_repeat or test_re_match or one_object",
            os.path.join(FIXTURES, "test_clean.py"), LEAKY_FILE], self.tmp)
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, output[-3000:])
        self.assertEqual(sorted(results), ["test_marker_repeat", "test_one_object_per_run",
                                           "test_re_match"])
        self.assertIn("1 tests checked, 0 leaking", output)

    def test_without_the_binary(self):
        """No leakdiff program: the plugin compares the snapshots itself,
        finds the same leak and says so."""
        python, ext = self.pythons()[0]
        r, results = run_pytest(python, ext, ["--leakdiff", "-k", "one_object or warm_up",
                                              LEAKY_FILE], self.tmp,
                                extra_env={"LEAKDIFF": self.path("no-such-leakdiff")})
        output = r.stdout + r.stderr
        self.assert_leaks(results, output, ["test_one_object_per_run"])
        self.assertEqual(results[WARM_UP][0], "passed", output[-3000:])
        self.assertIn("no leakdiff program found", output)

    def test_entry_point(self):
        """With the agent's directory on the path, pytest finds the plugin
        through leakdiff.dist-info, without -p."""
        python, ext = self.pythons()[0]
        r, results = run_pytest(python, ext, ["--leakdiff", "-k", "one_object", LEAKY_FILE],
                                self.tmp, plugin=False)
        self.assert_leaks(results, r.stdout + r.stderr, ["test_one_object_per_run"])

    def test_xdist(self):
        """Each xdist worker checks its own tests; the summary adds them up."""
        python, ext = self.pythons()[0]
        if not _has(python, "xdist"):
            self.skipTest("pytest-xdist is not installed for %s" % python)
        r, results = run_pytest(python, ext, ["-p", "xdist.plugin", "-n", "2", "--leakdiff",
                                              LEAKY_FILE], self.tmp)
        output = r.stdout + r.stderr
        self.assert_leaks(results, output)
        self.assertEqual(results[WARM_UP][0], "passed", output[-3000:])
        self.assertIn("6 tests checked, 5 leaking", output)

    def test_under_record(self):
        """python3 -m pytest under leakdiff record: the plugin shares the
        recorder's agent, and the recorder still writes its snapshot."""
        python, ext = self.pythons()[0]
        out = self.path("run.snap")
        env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        if ext and not ext.startswith(harness.build_root()):
            env["LEAKDIFF_AGENT_DIR"] = os.path.dirname(os.path.dirname(ext))
        r = harness.leakdiff("record", "-o", out, "--", python, "-m", "pytest",
                             "-p", "no:cacheprovider", "--rootdir", FIXTURES,
                             "-p", "leakdiff.pytest_plugin", "--leakdiff",
                             "-k", "one_object or warm_up", LEAKY_FILE,
                             env=env, cwd=self.tmp, timeout=900)
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, output[-3000:])
        self.assertIn("type test_leaky.Token:", output)
        self.assertIn("2 tests checked, 1 leaking", output)
        self.assertTrue(os.path.exists(out), output[-3000:])
        self.assertEqual(harness.load_snap(out)["format"], "leakdiff-snapshot")


if __name__ == "__main__":
    harness.main()
