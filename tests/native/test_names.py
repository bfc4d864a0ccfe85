#!/usr/bin/env python3
"""Native names and recordings (issue 15), end to end through the real
`leakdiff record` and `leakdiff diff`: a plugin dlopen'ed by a relative
path, a main executable without debug information, library frames without
a line, and programs reached through wrappers that exec them (a shell
script, env, python3 under --runtime=native, a pyenv shim)."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import TempDirCase, diff_json, leakdiff, load_snap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.environ.get("NATIVE_PROG_STATIC")
CXX = os.environ.get("NATIVE_PROG_CXX")
CC = shutil.which("cc") or shutil.which("gcc")

PLUGIN = r"""
#include <stdlib.h>

struct item { struct item *next; char pad[24]; };
static struct item *kept;

__attribute__((noinline)) void plugin_store(int n)
{
	for (int i = 0; i < n; i++) {
		struct item *it = malloc(sizeof(*it)); /* PLUGIN-SITE */
		it->next = kept;
		kept = it;
	}
}
"""

HOST = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	void *h = dlopen("./libplug.so", RTLD_NOW);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	void (*store)(int) = (void (*)(int))dlsym(h, "plugin_store");
	/* The working directory changes after the load: the recorder must
	 * still find the plugin. */
	if (!store || chdir("/") != 0)
		return 3;
	store(argc > 1 ? atoi(argv[1]) : 10);
	return 0;
}
"""

# A main program whose allocating function is in the executable itself.
PLAIN = r"""
#include <stdlib.h>

static void **kept;

__attribute__((noinline)) void keep_blocks(int n)
{
	kept = malloc((size_t)n * sizeof(void *));
	for (int i = 0; i < n; i++)
		kept[i] = malloc(40);
}

int main(int argc, char **argv)
{
	keep_blocks(argc > 1 ? atoi(argv[1]) : 10);
	return 0;
}
"""


def marker(text):
    return PLUGIN.split("\n").index([x for x in PLUGIN.split("\n") if text in x][0]) + 1


class Names(TempDirCase):
    def setUp(self):
        super().setUp()
        if not CC:
            self.skipTest("no C compiler")

    def cc(self, source, out, *flags):
        src = self.path(out + ".c")
        with open(src, "w") as f:
            f.write(source)
        subprocess.run([CC, *flags, "-o", self.path(out), src], check=True, cwd=self.tmp,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        return self.path(out)

    def record(self, name, *cmd, extra=()):
        out = self.path(name)
        r = leakdiff("record", *extra, "-o", out, "--", *cmd, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def test_plugin_by_relative_path(self):
        self.cc(PLUGIN, "libplug.so", "-g", "-O0", "-shared", "-fPIC")
        host = self.cc(HOST, "host", "-O0", "-g", "-ldl")
        a = self.record("a.snap", host, "10")
        b = self.record("b.snap", host, "30")
        d = diff_json(a, b)
        rows = [s for s in d["sites"] if s["frames"] and s["frames"][0]["function"] == "plugin_store"]
        self.assertEqual(len(rows), 1, d["sites"])
        top = rows[0]
        f = top["frames"][0]
        self.assertTrue(f["file"].endswith("libplug.so.c"), f)
        self.assertEqual(f["line"], marker("PLUGIN-SITE"))
        self.assertEqual((top["count_before"], top["count_after"], top["count_delta"]), (10, 30, 20))
        self.assertIn("main", [x["function"] for x in top["frames"]])
        r = leakdiff("diff", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("libplug.so.c:%d in plugin_store" % marker("PLUGIN-SITE"), r.stdout)

    def check_main_module(self, prog, expect_function):
        a = self.record("a.snap", prog, "10")
        b = self.record("b.snap", prog, "30")
        d = diff_json(a, b)
        rows = [s for s in d["sites"] if s["count_delta"] == 20]
        self.assertEqual(len(rows), 1, d["sites"])
        frames = rows[0]["frames"]
        mine = [x for x in frames if x["file"] == os.path.realpath(prog)]
        self.assertTrue(mine, frames)
        for x in frames:
            self.assertNotEqual(x["file"], "", frames)
        for x in mine:
            self.assertNotIn("line", x)
        if expect_function:
            self.assertIn("keep_blocks", [x["function"] for x in mine])
        r = leakdiff("diff", "-v", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        if expect_function:
            self.assertIn("keep_blocks (%s)" % os.path.basename(prog), r.stdout)
        self.assertIsNone(re.search(r":0(\s|$)", r.stdout), r.stdout)

    def test_main_executable_without_debug_info(self):
        self.check_main_module(self.cc(PLAIN, "plain", "-O0", "-g0"), True)

    def test_main_executable_with_debug_units_but_no_lines(self):
        """What node's binary is like: DWARF units cover the code but give
        no line for it. The module still names the frames (they were
        named "" before)."""
        objcopy = shutil.which("objcopy")
        if not objcopy:
            self.skipTest("no objcopy")
        prog = self.cc(PLAIN, "nolines", "-O0", "-g")
        subprocess.run([objcopy, "--remove-section=.debug_line", prog], check=True, timeout=60)
        self.check_main_module(prog, True)

    def test_stripped_main_executable_is_named(self):
        prog = self.cc(PLAIN, "stripped", "-O0", "-g0", "-s")
        self.check_main_module(prog, False)

    def test_library_frame_names_function_then_module(self):
        if not CXX:
            self.skipTest("no C++ compiler at build time")
        a = self.record("a.snap", CXX, "1000")
        b = self.record("b.snap", CXX, "3000")
        d = diff_json(a, b)
        new = [x for x in d["sites"][0]["frames"] if x["function"] == "operator new"]
        self.assertTrue(new, d["sites"][0]["frames"])
        for x in new:
            self.assertNotIn("line", x)
        r = leakdiff("diff", "-v", a, b)
        self.assertIn("operator new (%s)" % os.path.basename(new[0]["file"]), r.stdout)
        self.assertNotIn("libstdc++.so.6:0", r.stdout)


WRAPPER = '#!/bin/sh\nexec "$@"\n'


class Wrappers(TempDirCase):
    def wrapper(self, body=WRAPPER):
        path = self.path("wrap.sh")
        with open(path, "w") as f:
            f.write(body)
        os.chmod(path, 0o755)
        return path

    def records(self, path):
        line = harness.source_line(os.path.join(HERE, "prog_static.c"), "RECORD-SITE")
        doc = load_snap(path)
        return sum(c for c, _b, fr in doc["sites"] if doc["frames"][fr[0]][1] == line)

    def snaps(self):
        return sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap"))

    def test_shell_wrapper_exec(self):
        out = self.path("run.snap")
        r = leakdiff("record", "-o", out, "--", self.wrapper(), STATIC, "100", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.snaps(), ["run.snap"])
        self.assertEqual(self.records(out), 10)
        self.assertEqual(os.path.basename(load_snap(out)["meta"]["executable"]), "prog_static")

    def test_wrapper_children_are_not_recorded(self):
        """The wrapper runs the program once in a child first: only the
        program it execs is recorded."""
        out = self.path("run.snap")
        body = '#!/bin/sh\n"$1" 300 || exit 9\nexec "$@"\n'
        r = leakdiff("record", "-o", out, "--", self.wrapper(body), STATIC, "100", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.snaps(), ["run.snap"])
        self.assertEqual(self.records(out), 10)

    def test_env_and_nested_wrappers(self):
        out = self.path("run.snap")
        r = leakdiff("record", "-o", out, "--", "env", "FOO=1", self.wrapper(), "nice", STATIC, "200",
                     cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.snaps(), ["run.snap"])
        self.assertEqual(self.records(out), 20)

    def python_sites(self, out):
        doc = load_snap(out)
        files = {doc["strings"][doc["frames"][fr][0]] for _c, _b, frs in doc["sites"] for fr in frs}
        exe = os.path.realpath(doc["meta"]["executable"])
        self.assertTrue(os.path.basename(exe).startswith("python"), exe)
        return doc, [f for f in files if "libpython" in os.path.basename(f) or f == exe]

    def test_python_through_a_shell_wrapper(self):
        python = os.path.realpath(sys.executable)
        out = self.path("py.snap")
        r = leakdiff("record", "--runtime=native", "-o", out, "--", self.wrapper(), python, "-c",
                     "x = [bytes(100) for _ in range(1000)]", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.snaps(), ["py.snap"])
        doc, ours = self.python_sites(out)
        self.assertEqual(doc["meta"]["runtime"], "native")
        self.assertTrue(ours, "no frame in libpython or the interpreter")

    def test_snapshot_requests_across_the_exec(self):
        """With --every the recorder keeps asking while the wrapper execs:
        a request between the exec and the new agent's handler must not
        end the program (the signal is held blocked across the exec), and
        the program must not be left with it blocked."""
        python = os.path.realpath(sys.executable)
        out = self.path("ev.snap")
        # The interpreter runs until one of its own interval snapshots is
        # on disk (at most 60 s), however slow the machine.
        code = ("import glob, gzip, json, os, time\n"
                "blk = [l for l in open('/proc/self/status') if l.startswith('SigBlk:')][0]\n"
                "assert int(blk.split()[1], 16) == 0, blk\n"
                "x = [bytes(100) for _ in range(1000)]\n"
                "def mine(p):\n"
                "    try:\n"
                "        m = json.load(gzip.open(p))['meta']\n"
                "    except (OSError, ValueError, EOFError):\n"
                "        return False\n"
                "    return os.path.basename(m['executable']).startswith('python')\n"
                "end = time.time() + 60\n"
                "while time.time() < end and not any(mine(p) for p in glob.glob('ev.*.snap')):\n"
                "    time.sleep(0.05)\n")
        r = leakdiff("record", "--runtime=native", "--every=5ms", "-o", out, "--", self.wrapper(),
                     "/bin/sh", "-c", 'exec "$0" -c "$1"', python, code, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ev.snap", self.snaps())
        self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")
        # The shells' snapshots and the interpreter's share one numbering:
        # the interpreter's agent counts from 1 again, its files follow on.
        numbered = sorted(int(n.split(".")[1]) for n in self.snaps() if n != "ev.snap")
        self.assertEqual(numbered, list(range(1, len(numbered) + 1)))
        last = load_snap(self.path("ev.%d.snap" % numbered[-1]))["meta"]
        self.assertTrue(os.path.basename(last["executable"]).startswith("python"), last)

    def test_pyenv_shim(self):
        # Under pyenv, this test itself runs with the version's bin first
        # on PATH: look for the shims where pyenv keeps them.
        roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")]
        shims = [os.path.join(r, "shims", "python3") for r in roots if r] + [shutil.which("python3")]
        shim = None
        for candidate in shims:
            if candidate and os.access(candidate, os.X_OK):
                with open(candidate, "rb") as f:
                    if f.read(2) == b"#!":
                        shim = candidate
                        break
        if not shim:
            self.skipTest("no pyenv shim (a script that execs the interpreter) for python3")
        out = self.path("py.snap")
        r = leakdiff("record", "--runtime=native", "-o", out, "--", shim, "-c",
                     "x = [bytes(100) for _ in range(1000)]", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.snaps(), ["py.snap"])
        _, ours = self.python_sites(out)
        self.assertTrue(ours, "no frame in libpython or the interpreter")


if __name__ == "__main__":
    harness.main()
