#!/usr/bin/env python3
"""End to end: `leakdiff record --native` of a Python program (issue 12).

One snapshot holds Python's allocations (on the hooks) and the malloc
family's (the native agent in mixed mode); each native block's site is its
C frames, then the Python frames of the thread that made it.  The programs
leak by construction: tests/e2e/mixed/app.py calls a C extension built here
with -g for the interpreter under test (a static function that keeps a
malloc'ed copy of every string), ctypes' libc.malloc(1000), from four
threads with the GIL released, and across a fork; numpy_app.py keeps NumPy
arrays.  Counts and bytes are exact.
"""
import atexit
import math
import os
import shutil
import tempfile

import harness
from harness import TempDirCase, diff_json, leakdiff, load_snap, run, source_line

HERE = os.path.dirname(os.path.abspath(__file__))
MIXED = os.path.join(HERE, "mixed")
APP = os.path.join(MIXED, "app.py")
NUMPY_APP = os.path.join(MIXED, "numpy_app.py")
EXT_SOURCE = os.path.join(MIXED, "mixedext.c")
COPY_LINE = source_line(EXT_SOURCE, "leak: copy")
TEXT = 1001     # bytes of each copy: 1,000 characters and the NUL

_setups = {}


def native_library():
    return os.path.join(harness.build_root(), "agents", "native", "libleakdiff-preload.so")


def setup_for(python, env):
    """(env, ext_dir) for recording `python` with --native and mixedext
    built for it; (None, why) when that cannot be.  An agent directory
    made for another interpreter gets the native agent beside it."""
    key = (python, tuple(sorted(env.items())))
    if key in _setups:
        return _setups[key]
    probe = run([python, os.path.join(harness.SOURCE, "agents", "python", "ext", "probe.py")])
    lines = probe.stdout.split("\n")
    cc = shutil.which("cc") or shutil.which("gcc")
    if probe.returncode != 0 or len(lines) < 2 or not lines[1] or not cc:
        _setups[key] = (None, "no headers or no C compiler for %s" % python)
        return _setups[key]
    ext_dir = tempfile.mkdtemp(prefix="leakdiff-mixed-")
    atexit.register(shutil.rmtree, ext_dir, True)
    r = run([cc, "-std=c11", "-O2", "-g", "-fPIC", "-shared", "-I" + lines[0],
             "-o", os.path.join(ext_dir, "mixedext." + lines[1]), EXT_SOURCE], timeout=300)
    if r.returncode != 0:
        _setups[key] = (None, "mixedext does not build for %s: %s" % (python, r.stderr[-300:]))
        return _setups[key]
    root = env.get("LEAKDIFF_AGENT_DIR")
    if root and not os.path.exists(os.path.join(root, "libleakdiff-preload.so")):
        os.symlink(native_library(), os.path.join(root, "libleakdiff-preload.so"))
    env = dict(env)
    env["PYTHONPATH"] = ext_dir
    _setups[key] = (env, ext_dir)
    return _setups[key]


def frames_of(doc, site):
    """The frames of a site as dicts, innermost first."""
    strings, frames = doc["strings"], doc["frames"]
    out = []
    for i in site[2]:
        f = frames[i]
        kind = strings[f[5]] if len(f) > 5 and f[5] >= 0 else None
        out.append({"file": strings[f[0]], "line": f[1], "function": strings[f[2]], "kind": kind})
    return out


def sites_where(doc, want):
    """[(count, bytes, frames)] of the sites whose frames satisfy want."""
    rows = []
    for site in doc["sites"]:
        frames = frames_of(doc, site)
        if want(frames):
            rows.append((site[0], site[1], frames))
    return rows


def python_frame(frames, filename, line, function):
    return any(f["kind"] == "python" and f["file"].endswith(filename) and f["line"] == line
               and f["function"] == function for f in frames)


def copy_site(frames):
    """A site of keep_copy()'s malloc: the C frame first."""
    f = frames[0] if frames else {}
    return (f.get("kind") in ("native", "inlined") and f.get("file", "").endswith("mixedext.c")
            and f.get("line") == COPY_LINE and f.get("function") == "keep_copy")


class Mixed(TempDirCase):
    python = None

    def setUp(self):
        super().setUp()
        python, env = harness.python_with_agent()
        if python is None:
            self.skipTest(env)
        env, ext_dir = setup_for(python, env)
        if env is None:
            self.skipTest(ext_dir)
        self.python, self.env = python, env

    def record(self, name, args, extra=(), native=True, python=None, env=None):
        out = self.path(name)
        flags = ["--native"] if native else []
        r = leakdiff("record", "-q", "-o", out, *flags, *extra, "--", python or self.python, *args,
                     env=env or self.env, cwd=self.tmp, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)
        return out

    def test_extension_leak_has_its_c_and_python_frames(self):
        n = 300
        doc = load_snap(self.record("ext.snap", [APP, "ext", str(n)]))
        rows = sites_where(doc, copy_site)
        self.assertEqual(len(rows), 1, rows)
        count, size, frames = rows[0]
        self.assertEqual((count, size), (n, n * TEXT))
        self.assertTrue(python_frame(frames, "app.py", source_line(APP, "leak: ingest"), "ingest"), frames)
        # The interpreter's frames between the two halves: the loop only.
        loop = [f for f in frames if f["function"] == "_PyEval_EvalFrameDefault"]
        self.assertEqual(len(loop), 1, frames)
        kinds = [f["kind"] for f in frames]
        self.assertLess(kinds.index("native"), kinds.index("python"))
        totals = doc["totals"]
        self.assertGreaterEqual(totals["native_bytes"], n * TEXT)
        self.assertLessEqual(totals["native_bytes"], totals["heap_bytes"])
        self.assertEqual(doc["meta"]["runtime"], "python")

    def test_report_names_the_c_function_and_the_python_line(self):
        a = self.record("a.snap", [APP, "ext", "100"])
        b = self.record("b.snap", [APP, "ext", "300"])
        text = leakdiff("diff", a, b)
        self.assertIn(text.returncode, (0, 1), text.stderr)
        head = "mixedext.c:%d in keep_copy" % COPY_LINE
        caller = "called from app.py:%d in ingest" % source_line(APP, "leak: ingest")
        self.assertIn(head, text.stdout)
        lines = text.stdout.splitlines()
        at = [i for i, line in enumerate(lines) if line.strip() == head]
        self.assertTrue(at, text.stdout)
        self.assertEqual(lines[at[0] + 1].strip(), caller, text.stdout)
        self.assertIn("+200", lines[at[0] - 1])
        self.assertNotIn("_PyEval_EvalFrameDefault", text.stdout)
        self.assertRegex(text.stdout, r"(?m)^  native blocks +[0-9,]+ +[0-9,]+ +\+200$")
        # Nothing is left that no site explains: no blind-spot line.
        self.assertNotIn("more than the traced heap explains", text.stdout)
        verbose = leakdiff("diff", "-v", a, b)
        self.assertIn("_PyEval_EvalFrameDefault (", verbose.stdout)
        self.assertIn("[interpreter]", verbose.stdout)
        d = diff_json(a, b)
        site = [s for s in d["sites"] if s["frames"][0]["function"] == "keep_copy"
                and s["frames"][0]["line"] == COPY_LINE]
        self.assertEqual(len(site), 1)
        self.assertEqual(site[0]["count_delta"], 200)
        self.assertEqual(site[0]["bytes_delta"], 200 * TEXT)
        self.assertEqual(d["native"]["count_delta"], 200)
        # The copies, and the array of their pointers that remember() grows.
        grown = sum(s["bytes_delta"] for s in d["sites"] if s["frames"][0].get("kind") != "python")
        self.assertEqual(d["native"]["bytes_delta"], grown)
        self.assertGreaterEqual(grown, 200 * TEXT)
        marked = [f for f in site[0]["frames"] if f.get("interpreter")]
        self.assertEqual([f["function"] for f in marked], ["_PyEval_EvalFrameDefault"])

    def test_module_command_and_script_are_python_too(self):
        # -m, -c and a script whose #! names the interpreter: each gets
        # both agents, and the copies are under their Python line.
        script = self.path("run_app")
        with open(script, "w") as f:
            f.write("#!%s\n" % self.python)
            with open(APP) as src:
                f.write(src.read())
        os.chmod(script, 0o755)
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join((env["PYTHONPATH"], MIXED))
        n = 40
        line = source_line(APP, "leak: ingest")
        # The agent names the frames of -c code by file and line only ("?"
        # for the function), as in the default mode.
        cases = {
            "m": ([self.python, "-m", "app", "ext", str(n)], "app.py", line, "ingest"),
            "c": ([self.python, "-c", "import mixedext\nfor i in range(%d):\n    mixedext.stash('x' * 1000)" % n],
                  "<string>", 3, "?"),
            "script": ([script, "ext", str(n)], "run_app", line + 1, "ingest"),
        }
        for name, (command, filename, lineno, function) in sorted(cases.items()):
            with self.subTest(command=name):
                out = self.path(name + ".snap")
                r = leakdiff("record", "-q", "-o", out, "--native", "--", *command, env=env, cwd=self.tmp,
                             timeout=300)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("warning", r.stderr)
                rows = sites_where(load_snap(out), copy_site)
                self.assertEqual([(r[0], r[1]) for r in rows], [(n, n * TEXT)], rows)
                python = [f for f in rows[0][2] if f["kind"] == "python"]
                self.assertTrue(python[0]["file"].endswith(filename), python)
                self.assertEqual((python[0]["line"], python[0]["function"]), (lineno, function), python)

    def test_ctypes_malloc_kept_by_python_line(self):
        n = 250
        doc = load_snap(self.record("ctypes.snap", [APP, "ctypes", str(n)]))
        line = source_line(APP, "leak: ctypes")
        rows = sites_where(doc, lambda fr: fr and fr[0]["kind"] != "python"
                           and python_frame(fr, "app.py", line, "grab"))
        self.assertEqual(sum(r[0] for r in rows if r[1] == r[0] * 1000), n, rows)
        self.assertEqual(sum(r[1] for r in rows if r[1] == r[0] * 1000), n * 1000)

    def test_four_threads_with_the_gil_released(self):
        n = 150
        doc = load_snap(self.record("threads.snap", [APP, "threads", str(n)]))
        line = source_line(APP, "leak: worker")
        rows = sites_where(doc, lambda fr: copy_site(fr) and python_frame(fr, "app.py", line, "worker"))
        self.assertEqual(sum(r[0] for r in rows), 4 * n, rows)
        self.assertEqual(sum(r[1] for r in rows), 4 * n * TEXT)
        # Every copy is under the worker's line, none without Python frames.
        self.assertEqual(sum(r[0] for r in sites_where(doc, copy_site)), 4 * n)

    def test_fork_keeps_the_parents_snapshot_exact(self):
        n = 120
        out = self.record("fork.snap", [APP, "fork", str(n)])
        doc = load_snap(out)
        self.assertEqual(sum(r[0] for r in sites_where(doc, copy_site)), n)
        # Only the parent wrote a snapshot.
        self.assertEqual(sorted(os.listdir(self.tmp)), ["fork.snap"])

    def test_sampled_estimates(self):
        # --sample in mixed mode: both agents sample with the same mean, and
        # each picked block of n bytes stands for 1/p blocks, p = 1 -
        # exp(-n/mean).  Six standard deviations of the estimate (see
        # test_sampled.py): a correct sampler fails this about twice in a
        # billion runs.
        n, mean = 3000, 4096
        out = self.record("sampled.snap", [APP, "ext", str(n)], extra=("--sample=4KiB",))
        doc = load_snap(out)
        self.assertEqual(doc["meta"]["sample"], mean)
        rows = sites_where(doc, copy_site)
        p = -math.expm1(-TEXT / mean)
        tol_count = 6 * math.sqrt(n * (1 - p) / p)
        count, size = sum(r[0] for r in rows), sum(r[1] for r in rows)
        self.assertLessEqual(abs(count - n), tol_count, (count, n, tol_count))
        self.assertLessEqual(abs(size - n * TEXT), tol_count * TEXT, (size, n * TEXT))
        for r in rows:
            self.assertTrue(python_frame(r[2], "app.py", source_line(APP, "leak: ingest"), "ingest"))

    def test_pure_python_leak_is_the_same_with_and_without_native(self):
        program = self.path("retain.py")
        with open(program, "w") as f:
            f.write(RETAIN)
        line = source_line(program, "leak: item")
        got = {}
        for native in (False, True):
            a = self.record("a%d.snap" % native, [program, "1000"], native=native)
            b = self.record("b%d.snap" % native, [program, "3000"], native=native)
            d = diff_json(a, b)
            item = [t for t in d["types"] if t["name"].endswith(".Item")]
            site = [s for s in d["sites"] if s["frames"][0].get("file", "").endswith("retain.py")
                    and s["frames"][0]["line"] == line]
            got[native] = (item[0]["count_delta"], item[0]["bytes_delta"],
                           sorted((s["count_delta"], s["bytes_delta"]) for s in site))
        self.assertEqual(got[False][0], 2000)
        self.assertEqual(got[True], got[False])

    def test_each_block_is_counted_once(self):
        # Every block of ONCE goes through Python's allocators: small
        # objects from pymalloc's arenas, the 2,000-byte bytes objects and
        # the list's array from malloc underneath them. The hooks record all
        # of them, so not one is a native site, and the native totals stay
        # the same however many the program keeps.
        program = self.path("once.py")
        with open(program, "w") as f:
            f.write(ONCE)
        blob, item = source_line(program, "leak: blob"), source_line(program, "leak: item")
        a = self.record("a.snap", [program, "1000"])
        b = self.record("b.snap", [program, "3000"])
        pymalloc = {"_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc", "pymalloc_alloc",
                    "pymalloc_realloc", "new_arena", "allocate_from_new_pool", "_PyObject_ArenaMalloc",
                    "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "PyMem_Malloc",
                    "PyMem_Calloc", "PyMem_Realloc"}
        for out in (a, b):
            doc = load_snap(out)
            native = sites_where(doc, lambda fr: fr and fr[0]["kind"] != "python")
            self.assertEqual(sum(r[0] for r in native), doc["totals"]["native_blocks"])
            for count, size, frames in native:
                self.assertFalse([f for f in frames if f["file"].endswith("once.py")], frames)
                self.assertFalse([f for f in frames if f["function"] in pymalloc], frames)
        d = diff_json(a, b)
        self.assertEqual((d["native"]["count_delta"], d["native"]["bytes_delta"]), (0, 0), d["native"])
        site = [s for s in d["sites"] if s["frames"][0].get("file", "").endswith("once.py")
                and s["frames"][0]["line"] == blob]
        self.assertEqual([s["count_delta"] for s in site], [2000])
        self.assertGreaterEqual(site[0]["bytes_delta"], 2000 * 2000)
        item_type = [t for t in d["types"] if t["name"].endswith(".Item")]
        self.assertEqual(item_type[0]["count_delta"], 2000)
        self.assertTrue([s for s in d["sites"] if s["frames"][0].get("file", "").endswith("once.py")
                         and s["frames"][0]["line"] == item])

    def test_numpy_array_data_by_python_line(self):
        python, env = harness.numpy_python()
        if python is None:
            self.skipTest(env)
        env, why = setup_for(python, env)
        if env is None:
            self.skipTest(why)
        n = 80
        doc = load_snap(self.record("numpy.snap", [NUMPY_APP, str(n)], python=python, env=env))
        line = source_line(NUMPY_APP, "leak: array")
        rows = sites_where(doc, lambda fr: fr and fr[0]["kind"] != "python"
                           and python_frame(fr, "numpy_app.py", line, "grab"))
        data = [r for r in rows if r[1] == r[0] * 8000]
        self.assertEqual([(r[0], r[1]) for r in data], [(n, n * 8000)], rows)

    def test_each_interpreter_from_3_9(self):
        # The hooks know the frames of CPython 3.9 to 3.13: the leak is
        # found with both halves of its stack under each one here.
        tried = 0
        own = harness.real_python(harness.PYTHON)    # the other tests' interpreter
        for python, version in harness.python_candidates():
            if not (3, 9) <= version <= (3, 13) or python == own:
                continue
            with self.subTest(python=python):
                root, why = harness.agent_dir_for(python)
                if root is None:
                    continue
                env, why = setup_for(python, {"LEAKDIFF_AGENT_DIR": root})
                if env is None:
                    continue
                tried += 1
                doc = load_snap(self.record("v%d.%d.snap" % version, [APP, "ext", "60"],
                                            python=python, env=env))
                rows = sites_where(doc, copy_site)
                self.assertEqual([(r[0], r[1]) for r in rows], [(60, 60 * TEXT)])
                self.assertTrue(python_frame(rows[0][2], "app.py", source_line(APP, "leak: ingest"),
                                             "ingest"), rows[0][2])
        if not tried:
            self.skipTest("no interpreter from 3.9 to 3.13 with its headers here")

    def test_stripped_interpreter_gives_python_stacks_and_one_warning(self):
        # Debian's python3 has no symbol table of its own, only the dynamic
        # one: a copy whose dynamic name of the evaluation loop is changed
        # is an interpreter whose loop has no symbol. The native frames
        # cannot be joined: each block is under its Python stack alone,
        # with one warning however many snapshots and blocks there are.
        python, why = stripped_python(self.tmp)
        if python is None:
            self.skipTest(why)
        root, why = harness.agent_dir_for(SYSTEM_PYTHON)
        if root is None:
            self.skipTest(why)
        env, why = setup_for(SYSTEM_PYTHON, {"LEAKDIFF_AGENT_DIR": root})
        if env is None:
            self.skipTest(why)
        n = 50
        out = self.path("stripped.snap")
        r = leakdiff("record", "-q", "--every=50ms", "-o", out, "--native", "--", python, APP, "ext",
                     str(n), env=env, cwd=self.tmp, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        warnings = [line for line in r.stderr.splitlines() if "warning" in line]
        self.assertEqual(len(warnings), 1, r.stderr)
        self.assertIn("_PyEval_EvalFrameDefault", warnings[0])
        self.assertIn("stripped interpreter", warnings[0])
        doc = load_snap(out)
        self.assertEqual(sites_where(doc, lambda fr: any(f["file"].endswith("mixedext.c") for f in fr)), [])
        line = source_line(APP, "leak: ingest")
        rows = sites_where(doc, lambda fr: fr and fr[0]["kind"] == "python"
                           and python_frame(fr[:1], "app.py", line, "ingest"))
        # The n copies and remember()'s array of 64 pointers, now one site.
        self.assertEqual([(r[0], r[1]) for r in rows], [(n + 1, n * TEXT + 64 * 8)], rows)

    def test_without_the_hooks_it_says_so(self):
        env = dict(self.env)
        env["LEAKDIFF_PURE"] = "1"
        out = self.path("pure.snap")
        r = leakdiff("record", "-q", "-o", out, "--native", "--", self.python, APP, "ext", "10",
                     env=env, cwd=self.tmp, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--native needs the allocator hooks", r.stderr)
        self.assertEqual(sites_where(load_snap(out), copy_site), [])

    def test_refusals(self):
        for extra, what in ((["--tracemalloc"], "--tracemalloc"),
                            (["--runtime=native"], "--runtime=native")):
            r = leakdiff("record", "-o", self.path("x.snap"), "--native", *extra, "--",
                         self.python, "-c", "pass")
            self.assertEqual(r.returncode, 125, r.stderr)
            self.assertIn(what, r.stderr)
        r = leakdiff("record", "-o", self.path("x.snap"), "--native", "--pid", str(os.getpid()))
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertRegex(r.stderr, r"--native cannot be used with --pid")
        r = leakdiff("record", "-o", self.path("x.snap"), "--native", "--", "true")
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("--native is for Python programs", r.stderr)
        r = leakdiff("record", "-o", self.path("x.snap"), "--runtime=mixed", "--", "true")
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertFalse(os.path.exists(self.path("x.snap")))


RETAIN = '''\
import sys

N = int(sys.argv[1])
kept = []


class Item:
    def __init__(self, i):
        self.i = i


for i in range(N):
    kept.append(Item(i))        # leak: item
'''

ONCE = '''\
import sys

N = int(sys.argv[1])
kept = []


class Item:
    def __init__(self, i):
        self.i = i
        self.blob = bytes(2000)     # leak: blob


for i in range(N):
    kept.append(Item(i))            # leak: item
'''


SYSTEM_PYTHON = "/usr/bin/python3"
LOOP = b"_PyEval_EvalFrameDefault"


def stripped_python(where):
    """A copy of SYSTEM_PYTHON in where whose evaluation loop has no name
    (its entry in .dynstr renamed), or (None, why not) where that
    interpreter has a symbol table or debug information of its own, or no
    dynamic symbol for the loop."""
    real = os.path.realpath(SYSTEM_PYTHON)
    if not os.path.exists(real) or not shutil.which("readelf"):
        return None, "no %s or no readelf" % SYSTEM_PYTHON
    sections = run(["readelf", "-S", "-W", real]).stdout
    if ".symtab" in sections or ".gnu_debugdata" in sections:
        return None, "%s has a symbol table" % real
    notes = run(["readelf", "-n", real]).stdout.split("Build ID:")
    build_id = notes[1].split()[0] if len(notes) > 1 else ""
    if build_id and os.path.exists("/usr/lib/debug/.build-id/%s/%s.debug" % (build_id[:2], build_id[2:])):
        return None, "%s has debug information installed" % real
    dynstr = None
    for line in sections.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == ".dynstr":
            dynstr = (int(fields[4], 16), int(fields[5], 16))
    with open(real, "rb") as f:
        data = bytearray(f.read())
    at = data.find(b"\0" + LOOP + b"\0", dynstr[0], dynstr[0] + dynstr[1]) if dynstr else -1
    if at < 0:
        return None, "%s has no dynamic symbol for the evaluation loop" % real
    data[at + len(LOOP)] = ord("X")     # _PyEval_EvalFrameDefaulX
    copy = os.path.join(where, os.path.basename(real))
    with open(copy, "wb") as f:
        f.write(data)
    os.chmod(copy, 0o755)
    return copy, None


if __name__ == "__main__":
    harness.main()
