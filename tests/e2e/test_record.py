#!/usr/bin/env python3
"""End to end: real leaky Python programs recorded with `leakdiff record`
at two sizes and compared with `leakdiff diff`. The programs are built so
the growth is known exactly: N more requests leave N more objects."""
import os
import signal
import subprocess
import time

import harness
from harness import EXAMPLES, PYTHON, TempDirCase, diff_json, find, leakdiff, load_snap, source_line

APP = os.path.join(EXAMPLES, "leakyapp")
# Retention paths are searched within a time budget; give them room on a
# loaded CI machine so the path assertions test the search, not the clock.
ENV = {"PYTHONPATH": EXAMPLES, "LEAKDIFF_PATH_SECONDS": "10"}


def module_file(name):
    return os.path.join(APP, name)


class Recorder(TempDirCase):
    tracer = ()     # options that pick the agent's recorder of allocations

    def record(self, name, *cmd, env=None, opts=(), check=True):
        out = self.path(name)
        full_env = dict(ENV)
        full_env.update(env or {})
        r = leakdiff("record", "-o", out, *self.tracer, *opts, "--", *cmd, env=full_env, cwd=self.tmp)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.exists(out), r.stderr)
        return r, out

    def app_pair(self, leak, small=1000, large=3000, python=PYTHON):
        _, a = self.record("a.snap", python, "-m", "leakyapp", "--leak", leak, "--requests", str(small))
        _, b = self.record("b.snap", python, "-m", "leakyapp", "--leak", leak, "--requests", str(large))
        return a, b, diff_json(a, b)

    def assert_top_frame(self, frame, file, marker, function):
        self.assertEqual(os.path.realpath(frame["file"]), os.path.realpath(module_file(file)))
        self.assertEqual(frame["line"], source_line(module_file(file), marker))
        self.assertEqual(frame["function"], function)


def blocks_per_session(count, requests):
    """Blocks the registry's allocating line leaves per request: the
    Session object, and on the interpreters that allocate an instance's
    attribute values apart from it (3.11 here), those too."""
    per, rest = divmod(count, requests)
    assert rest == 0 and per in (1, 2), (count, requests)
    return per


class Leaks(Recorder):
    """The example's leaks, recorded on the allocator hooks where the
    _sampler extension is built for PYTHON (on tracemalloc elsewhere)."""
    _expected_tracer = None

    def expected_tracer(self):
        if Leaks._expected_tracer is None:
            Leaks._expected_tracer = "hooks" if harness.ext_built("_sampler") else "tracemalloc"
        return Leaks._expected_tracer

    def app_pair(self, leak, small=1000, large=3000, python=PYTHON):
        a, b, d = super().app_pair(leak, small, large, python)
        if python == PYTHON:
            for snap in (a, b):
                self.assertEqual(load_snap(snap)["meta"]["tracer"], self.expected_tracer(), snap)
        return a, b, d

    def test_registry(self):
        a, b, d = self.app_pair("registry")
        t = find(d["types"], name="leakyapp.session.Session")
        self.assertIsNotNone(t, [x["name"] for x in d["types"]])
        self.assertEqual((t["count_before"], t["count_after"], t["count_delta"]), (1000, 3000, 2000))
        site = t["sites"][0]
        self.assertEqual(site["count_delta"], 2000)
        self.assert_top_frame(site["frames"][0], "session.py", "# leak: registry", "login")
        self.assertEqual(site["frames"][1]["function"], "serve")
        # the site table has the same line, with at least those 2,000 blocks
        s = [x for x in d["sites"] if x["frames"][0]["line"] == site["frames"][0]["line"]
             and x["frames"][0]["file"] == site["frames"][0]["file"]]
        self.assertTrue(s and s[0]["count_delta"] >= 2000, s)
        # exactly: the same number of blocks for every request
        per = blocks_per_session(s[0]["count_before"], 1000)
        self.assertEqual(len(s), 1, s)
        self.assertEqual((s[0]["count_before"], s[0]["count_after"], s[0]["count_delta"]),
                         (1000 * per, 3000 * per, 2000 * per))
        h = find(d["hints"], kind="container", name="leakyapp.session.Session.registry")
        self.assertEqual((h["before"], h["after"]), (1000, 3000))
        p = find(d["hints"], kind="path", type="leakyapp.session.Session")
        self.assertEqual(p["path"][0], "leakyapp.session.Session.registry")
        self.assertEqual(p["path"][-1], "leakyapp.session.Session")
        # the text report leads with the type and the line that allocates it
        r = leakdiff("diff", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = source_line(module_file("session.py"), "# leak: registry")
        self.assertIn("leakyapp.session.Session", r.stdout)
        self.assertIn("leakyapp/session.py:%d in login" % line, r.stdout)

    def test_global_cache(self):
        _, _, d = self.app_pair("cache")
        t = find(d["types"], name="leakyapp.cache.CachedPage")
        self.assertEqual((t["count_before"], t["count_after"]), (1000, 3000))
        self.assert_top_frame(t["sites"][0]["frames"][0], "cache.py", "# leak: cache", "render")
        self.assertEqual(t["sites"][0]["count_delta"], 2000)
        h = find(d["hints"], kind="container", name="leakyapp.cache.CACHE")
        self.assertEqual((h["type"], h["before"], h["after"]), ("dict", 1000, 3000))

    def test_unbounded_lru_cache(self):
        _, _, d = self.app_pair("lru")
        t = find(d["types"], name="leakyapp.pricing.Quote")
        self.assertEqual(t["count_delta"], 2000)
        self.assert_top_frame(t["sites"][0]["frames"][0], "pricing.py", "# leak: lru", "quote")
        h = find(d["hints"], kind="lru_cache", name="leakyapp.pricing.quote")
        self.assertIsNone(h["maxsize"])
        self.assertEqual((h["before"], h["after"]), (1000, 3000))

    def test_stdlib_logger_per_request(self):
        a, b, d = self.app_pair("logger")
        t = find(d["types"], name="logging.Logger")
        self.assertEqual(t["count_delta"], 2000)
        site = t["sites"][0]
        self.assertIn("logging", site["frames"][0]["file"])
        caller = site["frames"][site["caller"]]
        self.assert_top_frame(caller, "logs.py", "# leak: logger", "handle")
        r = leakdiff("diff", a, b)
        self.assertIn("called from leakyapp/logs.py:%d in handle"
                      % source_line(module_file("logs.py"), "# leak: logger"), r.stdout)

    def test_cycles_with_del_do_not_grow(self):
        r1, a = self.record("a.snap", PYTHON, "-m", "leakyapp", "--leak", "cycles", "--requests", "1000")
        r2, b = self.record("b.snap", PYTHON, "-m", "leakyapp", "--leak", "cycles", "--requests", "3000")
        d = diff_json(a, b)
        self.assertIsNone(find(d["types"], name="leakyapp.cycles.Node"))
        for snap in (a, b):
            doc = load_snap(snap)
            names = {doc["strings"][t[0]] for t in doc["types"]}
            self.assertNotIn("leakyapp.cycles.Node", names)
        # The control did make the cycles, and the collector freed every one
        # (two nodes per request, each finalized once) before the snapshot.
        for r, n, snap in ((r1, 1000, a), (r2, 3000, b)):
            self.assertEqual(r.stdout, "served %d requests, %d nodes finalized\n" % (n, 2 * n), r.stderr)
            gc_state = load_snap(snap)["gc"]
            self.assertEqual((gc_state["uncollectable"], gc_state["garbage"]), (0, 0), gc_state)
            self.assertGreaterEqual(sum(g["collected"] for g in gc_state["generations"]), 2 * n, gc_state)


class LeaksWithTracemalloc(Leaks):
    """The same leaks, the same exact counts, recorded with tracemalloc."""
    tracer = ("--tracemalloc",)

    def expected_tracer(self):
        return "tracemalloc"


class Tracers(Recorder):
    """Which recorder of allocations the agent uses, as meta.tracer says."""

    def tracer_of(self, *cmd, env=None, opts=()):
        _, out = self.record("t.snap", *cmd, env=env, opts=opts)
        meta = load_snap(out)["meta"]
        shown = leakdiff("show", out).stdout
        said = {"hooks": "recorded with the allocator hooks",
                "tracemalloc": "recorded with tracemalloc"}.get(meta.get("tracer"))
        self.assertIn(said, shown)
        return meta.get("tracer"), meta.get("depth")

    def test_hooks_by_default(self):
        if not harness.ext_built("_sampler"):
            self.skipTest("no _sampler extension built for %s" % PYTHON)
        self.assertEqual(self.tracer_of(PYTHON, "-c", "pass", opts=("--depth=7",)), ("hooks", 7))

    def test_tracemalloc_when_asked_or_already_on(self):
        self.assertEqual(self.tracer_of(PYTHON, "-c", "pass", opts=("--tracemalloc",)),
                         ("tracemalloc", 16))
        self.assertEqual(self.tracer_of(PYTHON, "-c", "pass", env={"LEAKDIFF_TRACER": "tracemalloc"}),
                         ("tracemalloc", 16))
        # the program's own -X tracemalloc is used as it is, with its depth
        self.assertEqual(self.tracer_of(PYTHON, "-X", "tracemalloc=5", "-c", "pass"), ("tracemalloc", 5))
        # the pure-Python agent has no hooks
        self.assertEqual(self.tracer_of(PYTHON, "-c", "pass", env={"LEAKDIFF_PURE": "1"}),
                         ("tracemalloc", 16))

    def test_numpy_data_outside_the_hooks_is_pointed_out(self):
        if not harness.ext_built("_sampler"):
            self.skipTest("no _sampler extension built for %s" % PYTHON)
        # A stand-in numpy: the note depends on the module being loaded.
        os.makedirs(os.path.join(self.tmp, "fake", "numpy"))
        open(os.path.join(self.tmp, "fake", "numpy", "__init__.py"), "w").close()
        env = {"PYTHONPATH": os.path.join(self.tmp, "fake")}
        note = "numpy is loaded: the data of its arrays is allocated outside Python's allocators"
        r, _ = self.record("n.snap", PYTHON, "-c", "import numpy", env=env)
        self.assertEqual(r.stderr.count(note), 1, r.stderr)
        r, _ = self.record("n.snap", PYTHON, "-c", "import numpy", env=env, opts=("--tracemalloc",))
        self.assertNotIn(note, r.stderr)
        r, _ = self.record("n.snap", PYTHON, "-c", "pass", env=env)
        self.assertNotIn(note, r.stderr)

    def test_unknown_tracer_is_reported(self):
        r, out = self.record("t.snap", PYTHON, "-c", "pass", env={"LEAKDIFF_TRACER": "bogus"})
        self.assertIn("LEAKDIFF_TRACER='bogus' is neither hooks nor tracemalloc", r.stderr)

    def test_tracemalloc_conflicts(self):
        for opts in (("--sample=1KiB",), ("--runtime=native",)):
            with self.subTest(opts=opts):
                r = leakdiff("record", "--tracemalloc", *opts, "--", "true")
                self.assertEqual(r.returncode, 125, r.stderr)
                self.assertIn("--tracemalloc", r.stderr)


SUBINTERPRETER = r"""
# An own-GIL subinterpreter allocates in a thread while the main one does.
import threading
try:
    import _interpreters as I          # 3.13
    def make(): return I.create()       # isolated: a GIL of its own
    def run(i, code): I.exec(i, code)
except ImportError:
    import _xxsubinterpreters as I      # 3.12
    def make(): return I.create(isolated=True)
    def run(i, code): I.run_string(i, code)

class Kept:
    pass

interp = make()
code = "x = []\nfor i in range(300000):\n    x.append({'a': [i] * 3, 'b': str(i)})\n    if len(x) > 1000: del x[:500]\n"
t = threading.Thread(target=run, args=(interp, code))
t.start()
churn = []
for i in range(300000):
    churn.append([i, str(i)])
    if len(churn) > 1000:
        del churn[:500]
KEPT = [Kept() for _ in range(1234)]  # kept
t.join()
"""


class Subinterpreters(Recorder):
    def test_own_gil_subinterpreter_left_alone(self):
        """From 3.12 a subinterpreter can run under a GIL of its own, at the
        same time as the main one; the hooks' tables are the main GIL's.
        Before they were left alone, this program died of heap corruption."""
        # PYTHON when it is 3.12 or newer, else another interpreter on this
        # machine with the hooks' extension built for it.
        python, env = harness.python_with_agent(at_least=(3, 12))
        if python is None:
            self.skipTest(env)
        prog = os.path.join(self.tmp, "subi.py")
        with open(prog, "w") as f:
            f.write(SUBINTERPRETER)
        for attempt in range(3):
            _, out = self.record("s.snap", python, prog, env=env)
            d = load_snap(out)
            self.assertEqual(d["meta"]["tracer"], "hooks")
            names = [d["strings"][t[0]] for t in d["types"]]
            kept = d["types"][names.index("__main__.Kept")]
            self.assertEqual(kept[1], 1234)
            rows = [r for r in d["type_sites"] if r[0] == names.index("__main__.Kept")]
            self.assertEqual(sum(r[1] for r in rows), 1234)


class Snapshots(Recorder):
    def test_api_snapshot_and_naming(self):
        r, out = self.record("run.snap", PYTHON, "-m", "leakyapp", "--leak", "registry",
                             "--requests", "2000", "--snapshot", "half-way")
        first = self.path("run.1.snap")
        self.assertTrue(os.path.exists(first), r.stderr)
        self.assertIn("wrote %s (snapshot 1, api \"half-way\"" % first, r.stderr)
        self.assertIn("wrote %s (snapshot 2, exit" % out, r.stderr)
        meta = load_snap(first)["meta"]
        self.assertEqual((meta["label"], meta["trigger"], meta["seq"]), ("half-way", "api", 1))
        self.assertEqual(meta["command"][-1], "half-way")
        d = diff_json(first, out)
        self.assertEqual(find(d["types"], name="leakyapp.session.Session")["count_delta"], 1000)

    def test_collector_state_kept(self):
        """The agent holds automatic collections off while it builds a
        snapshot and gives the program back the collector as it was."""
        script = self.path("gcstate.py")
        with open(script, "w") as f:
            f.write("import gc, leakdiff\n"
                    "leakdiff.snapshot('a')\n"
                    "print(gc.isenabled())\n"
                    "gc.disable()\n"
                    "leakdiff.snapshot('b')\n"
                    "print(gc.isenabled())\n")
        r, _ = self.record("gc.snap", PYTHON, script)
        self.assertEqual(r.stdout, "True\nFalse\n", r.stderr)
        self.assertEqual(load_snap(self.path("gc.2.snap"))["meta"]["label"], "b")

    def test_snapshot_is_noop_without_recorder(self):
        env = dict(os.environ, PYTHONPATH=os.path.join(harness.SOURCE, "agents", "python"))
        r = subprocess.run([PYTHON, "-c", "import leakdiff; print(leakdiff.snapshot('x'), leakdiff.recording())"],
                           env=env, stdout=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(r.stdout, "None False\n")

    def test_signal_and_every(self):
        script = self.path("wait.py")
        with open(script, "w") as f:
            f.write("import time\nkeep = []\nfor i in range(30):\n    keep.append(object())\n"
                    "    time.sleep(0.05)\n")
        r, out = self.record("w.snap", PYTHON, script, opts=["--every=300ms"])
        numbered = sorted(p for p in os.listdir(self.tmp) if p.startswith("w.") and p != "w.snap")
        self.assertGreaterEqual(len(numbered), 2, r.stderr)
        self.assertEqual(load_snap(self.path(numbered[0]))["meta"]["trigger"], "interval")
        # nothing comes after the at-exit snapshot
        last = max(load_snap(self.path(p))["meta"]["seq"] for p in numbered)
        self.assertLess(last, load_snap(out)["meta"]["seq"])
        # How many ticks fit depends on the machine's load, but every
        # snapshot taken was written: numbers 1..N without a gap, each an
        # interval one, the at-exit one N+1, and one "wrote" line for each.
        docs = [load_snap(self.path("w.%d.snap" % i)) for i in range(1, len(numbered) + 1)]
        self.assertEqual([doc["meta"]["seq"] for doc in docs], list(range(1, len(numbered) + 1)))
        self.assertEqual({doc["meta"]["trigger"] for doc in docs}, {"interval"})
        self.assertEqual(load_snap(out)["meta"]["seq"], len(numbered) + 1)
        self.assertEqual(r.stderr.count("leakdiff: wrote "), len(numbered) + 1, r.stderr)
        self.assertNotIn("dropped", r.stderr)

    def test_kill_usr2(self):
        script = self.path("serve.py")
        with open(script, "w") as f:
            f.write("import sys, time\nprint('ready', flush=True)\nsys.stdin.readline()\n")
        out = self.path("k.snap")
        env = dict(os.environ, **ENV)
        env.pop("LEAKDIFF", None)
        p = subprocess.Popen([harness.LEAKDIFF, "record", "-o", out, "--", PYTHON, script], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        self.assertEqual(p.stdout.readline(), "ready\n")
        target = int(subprocess.check_output(["pgrep", "-P", str(p.pid)]).split()[0])
        os.kill(target, signal.SIGUSR2)
        deadline = time.time() + 30
        while not os.path.exists(self.path("k.1.snap")) and time.time() < deadline:
            time.sleep(0.05)
        p.stdin.write("\n")
        p.stdin.flush()
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(load_snap(self.path("k.1.snap"))["meta"]["trigger"], "signal")
        self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")


class Process(Recorder):
    def test_exit_status_passed_on(self):
        r, out = self.record("x.snap", PYTHON, "-c", "import sys; sys.exit(3)", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertTrue(os.path.exists(out))

    def test_killed_target(self):
        code = ("import leakdiff, os, signal\nleakdiff.snapshot('before-crash')\n"
                "os.kill(os.getpid(), signal.SIGKILL)\n")
        r, out = self.record("x.snap", PYTHON, "-c", code, check=False)
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)
        self.assertIn("killed by signal 9", r.stderr)
        self.assertEqual(load_snap(self.path("x.1.snap"))["meta"]["label"], "before-crash")
        self.assertFalse(os.path.exists(out))
        self.assertEqual([p for p in os.listdir(self.tmp) if ".tmp." in p], [])

    def test_sigterm_forwarded(self):
        script = self.path("loop.py")
        with open(script, "w") as f:
            f.write("import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                    "print('ready', flush=True)\ntime.sleep(60)\n")
        out = self.path("t.snap")
        env = dict(os.environ, **ENV)
        env.pop("LEAKDIFF", None)
        p = subprocess.Popen([harness.LEAKDIFF, "record", "-o", out, "--", PYTHON, script], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(p.stdout.readline(), "ready\n")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")

    def test_output_unchanged(self):
        code = ("import sys\nprint('out', 1, flush=True)\nsys.stderr.write('err\\n')\n"
                "import os; print(sorted(k for k in os.environ if k.startswith('LEAKDIFF')))\n")
        plain = harness.run([PYTHON, "-c", code])
        r, _ = self.record("o.snap", PYTHON, "-c", code)
        self.assertEqual(r.stdout, plain.stdout)
        self.assertEqual(r.stdout, "out 1\n[]\n")
        self.assertTrue(r.stderr.startswith("err\n"), r.stderr)

    def test_children_not_traced(self):
        code = ("import subprocess, sys, os\n"
                "out = subprocess.run([sys.executable, '-c', 'import os, sys; "
                "print(sorted(k for k in os.environ if k.startswith(\"LEAKDIFF\")), "
                "\"sitecustomize\" in sys.modules and getattr(sys.modules[\"sitecustomize\"], \"__file__\", \"\"))'],"
                " stdout=subprocess.PIPE, universal_newlines=True).stdout\n"
                "print(out.strip())\n"
                "pid = os.fork()\n"
                "if pid == 0:\n    import leakdiff\n    print('child', leakdiff.snapshot('child'))\n    os._exit(0)\n"
                "os.waitpid(pid, 0)\n")
        r, out = self.record("c.snap", PYTHON, "-c", code)
        self.assertIn("child None", r.stdout)
        self.assertTrue(r.stdout.startswith("[]"), r.stdout)
        self.assertNotIn("agents/python/boot", r.stdout)
        written = [p for p in os.listdir(self.tmp) if p.endswith(".snap")]
        self.assertEqual(written, ["c.snap"])

    def test_chains_existing_sitecustomize(self):
        site = self.path("site")
        os.mkdir(site)
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write("import builtins\nbuiltins.CHAINED = True\n")
        r, _ = self.record("s.snap", PYTHON, "-c", "print(CHAINED)",
                           env={"PYTHONPATH": site + os.pathsep + EXAMPLES})
        self.assertEqual(r.stdout, "True\n")

    def test_script_and_console_script(self):
        script = self.path("tool")
        with open(script, "w") as f:
            f.write("#!%s\nimport leakyapp.__main__ as m\nm.main(['--requests', '10'])\n" % PYTHON)
        os.chmod(script, 0o755)
        r, out = self.record("cs.snap", script)
        self.assertIn("served 10 requests", r.stdout)
        self.assertEqual(load_snap(out)["meta"]["runtime"], "python")

    def test_isolated_mode_is_reported(self):
        """-I ignores PYTHONPATH, so the agent could never start: the
        command is refused before it runs, with a one-line message that
        says why and the way out."""
        marker = self.path("ran")
        code = "open(%r, 'w').close()" % marker
        r, out = self.record("i.snap", PYTHON, "-I", "-c", code, check=False)
        self.assertEqual(r.returncode, 125)
        self.assertEqual(r.stderr,
                         "leakdiff: %s: Python's -I (isolated mode) ignores PYTHONPATH, through which "
                         "leakdiff loads its agent, so nothing would be recorded; the command was not "
                         "run (record it without -I: -s -P keep the rest of the isolation)\n" % PYTHON)
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(out))
        # Combined flags, and the interpreter run through env, are read as
        # Python reads them; an -I after -c belongs to the program.
        r, _ = self.record("i.snap", "env", PYTHON, "-uEc", code, check=False)
        self.assertEqual((r.returncode, r.stderr),
                         (125, "leakdiff: env: Python's -E ignores PYTHONPATH, through which leakdiff "
                          "loads its agent, so nothing would be recorded; the command was not run "
                          "(record it without -E)\n"))
        r, _ = self.record("i.snap", PYTHON, "-W", "ignore", "-S", "-c", code, check=False)
        self.assertEqual((r.returncode, r.stderr),
                         (125, "leakdiff: %s: Python's -S skips the site module, which starts "
                          "leakdiff's agent, so nothing would be recorded; the command was not run "
                          "(record it without -S)\n" % PYTHON))
        self.assertFalse(os.path.exists(marker))
        self.record("i.snap", PYTHON, "-c", code, "-I")
        self.assertTrue(os.path.exists(marker))

    def test_os_exit_takes_the_exit_snapshot(self):
        """os._exit() skips atexit handlers; the agent takes the at-exit
        snapshot before it, so a program that succeeded stays a success."""
        script = self.path("quick.py")
        with open(script, "w") as f:
            f.write("import os, sys\n"
                    "class Kept:\n    pass\n"
                    "kept = [Kept() for _ in range(int(sys.argv[1]))]\n"
                    "sys.stdout.flush()\n"
                    "os._exit(int(sys.argv[2]))\n")
        _, a = self.record("a.snap", PYTHON, script, "100", "0")
        _, b = self.record("b.snap", PYTHON, script, "300", "0")
        self.assertEqual(load_snap(b)["meta"]["trigger"], "exit")
        row = find(diff_json(a, b)["types"], name="__main__.Kept")
        self.assertEqual((row["count_before"], row["count_after"]), (100, 300))
        # The program's own status is passed on, with the snapshot.
        r, c = self.record("c.snap", PYTHON, script, "5", "7", check=False)
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertEqual(load_snap(c)["meta"]["trigger"], "exit")
        self.assertNotIn("without an at-exit snapshot", r.stderr)

    def test_unwritable_output_fails_before_running(self):
        """A typo in -o is reported before the program runs, not after."""
        marker = self.path("ran")
        code = "open(%r, 'w').close()" % marker
        for out, why in ((self.path("no", "such", "x.snap"), "No such file or directory"),
                         (self.tmp, "Is a directory")):
            r = leakdiff("record", "-o", out, "--", PYTHON, "-c", code, env=ENV, cwd=self.tmp)
            self.assertEqual(r.returncode, 125)
            self.assertEqual(r.stderr, "leakdiff: %s: cannot write the snapshot there: %s; "
                             "nothing was run\n" % (out, why))
            self.assertFalse(os.path.exists(marker))
        if os.geteuid() != 0:
            ro = self.path("ro")
            os.mkdir(ro, 0o555)
            r = leakdiff("record", "-o", os.path.join(ro, "x.snap"), "--", PYTHON, "-c", code,
                         env=ENV, cwd=self.tmp)
            self.assertEqual(r.returncode, 125, r.stderr)
            self.assertFalse(os.path.exists(marker))
        self.assertEqual([p for p in os.listdir(self.tmp) if ".tmp." in p], [])


class Releases(Recorder):
    """Two checkouts of one program in different directories; the second
    release adds code above the leaking function and leaks twice as much."""

    def checkout(self, name, insert_above_login=False):
        import shutil
        root = self.path(name)
        shutil.copytree(APP, os.path.join(root, "leakyapp"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        if insert_above_login:
            p = os.path.join(root, "leakyapp", "session.py")
            with open(p) as f:
                text = f.read()
            text = text.replace("def login(user):", "def audit(user):\n    \"\"\"New in release 2.\"\"\"\n"
                                "    return 'user %d' % user\n\n\ndef login(user):")
            with open(p, "w") as f:
                f.write(text)
        return root

    def test_one_line_inserted(self):
        # The allocating line moves onto the number its neighbour had: the
        # same line number with different source text is not the same line.
        v1, v2 = self.checkout("r1"), self.checkout("r2")
        p = os.path.join(v2, "leakyapp", "session.py")
        with open(p) as f:
            text = f.read()
        with open(p, "w") as f:
            f.write("# release 2\n" + text)
        a, b = self.path("a.snap"), self.path("b.snap")
        self.record_in(v1, a, 1000)
        self.record_in(v2, b, 2000)
        d = diff_json(a, b)
        line2 = source_line(p, "# leak: registry")
        rows = [s for s in d["sites"] if s["frames"][0]["function"] == "login"
                and s["frames"][0]["line"] == line2]
        self.assertTrue(rows)
        self.assertEqual(rows[0]["frames"][0]["text"], "session = Session(user)  # leak: registry")
        self.assertGreaterEqual(rows[0]["count_before"], 1000, rows[0])
        per = blocks_per_session(rows[0]["count_before"], 1000)
        self.assertEqual((len(rows), rows[0]["count_after"]), (1, 2000 * per), rows)
        self.assertEqual(rows[0]["match"], "offset")

    def record_in(self, root, out, requests):
        r = leakdiff("record", "-q", "-o", out, "--", PYTHON, "-m", "leakyapp", "--leak", "registry",
                     "--requests", str(requests), cwd=root, env={"PYTHONPATH": ""})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_moved_code_matches_one_site(self):
        v1, v2 = self.checkout("release-1.0"), self.checkout("release-1.1", insert_above_login=True)
        a, b = self.path("base.snap"), self.path("cand.snap")
        self.record_in(v1, a, 1000)
        self.record_in(v2, b, 2000)
        marker = "# leak: registry"
        line1 = source_line(os.path.join(v1, "leakyapp", "session.py"), marker)
        line2 = source_line(os.path.join(v2, "leakyapp", "session.py"), marker)
        self.assertEqual(line2, line1 + 5)
        d = diff_json(a, b)
        t = find(d["types"], name="leakyapp.session.Session")
        self.assertEqual((t["count_before"], t["count_after"]), (1000, 2000))
        site = t["sites"][0]
        self.assertEqual((site["state"], site["match"], site["count_delta"]), ("kept", "offset", 1000))
        self.assertEqual(site["frames"][0]["line"], line2)
        # not a gone/new pair: nothing at login() vanished
        for s in d["sites"]:
            if s["frames"][0]["function"] == "login":
                self.assertNotEqual(s["state"], "gone")
        exact = diff_json(a, b, "--match=exact")
        gone = [s for s in exact["sites"] if s["state"] == "gone" and s["frames"][0]["function"] == "login"]
        self.assertTrue(gone, "with --match=exact the moved line is a gone/new pair")
        # CI gate: the total grew by far more than 1%
        r = leakdiff("diff", "--max-total-growth=1%", "--format=markdown", a, b)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("memory growth over the limit", r.stdout)
        self.assertIn("exceeds --max-total-growth=1%", r.stdout)
        self.assertIn("leakyapp.session.Session", r.stdout)
        r = leakdiff("diff", "--max-total-growth=1GiB", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)


class OtherInterpreters(Recorder):
    """The registry leak under every other interpreter found here."""

    def test_other_pythons(self):
        candidates = ["/usr/bin/python3"] + sorted(
            "/root/.pyenv/versions/%s/bin/python3" % v for v in ("3.8.18", "3.13.0"))
        tried = 0
        for py in candidates:
            if not os.access(py, os.X_OK) or os.path.realpath(py) == os.path.realpath(PYTHON):
                continue
            tried += 1
            with self.subTest(python=py):
                _, _, d = self.app_pair("registry", 100, 300, python=py)
                t = find(d["types"], name="leakyapp.session.Session")
                self.assertEqual(t["count_delta"], 200)
                self.assert_top_frame(t["sites"][0]["frames"][0], "session.py", "# leak: registry", "login")
        if not tried:
            self.skipTest("no other Python interpreter on this machine")


if __name__ == "__main__":
    harness.main()
