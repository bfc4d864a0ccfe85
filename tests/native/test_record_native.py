#!/usr/bin/env python3
"""Native programs end to end through the real `leakdiff record` and
`leakdiff diff`: a static C function keeping every tenth record, a C++
method filling a std::map cache, four threads with fork and exec, and the
at-exit live bytes checked against heaptrack's leak figure."""
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
THREADS = os.environ.get("NATIVE_PROG_THREADS")
TIDY = os.environ.get("NATIVE_PROG_TIDY")

TIDY_NOTE = ["Both snapshots were taken at exit and are nearly empty (64 KiB or less",
             "live): the program freed its memory before exiting. To see its heap while",
             "it runs, take snapshots during the run: leakdiff record --every=DURATION or",
             '--peak, kill -USR2 PID, or leakdiff_snapshot("label") in the program.']


def marker(name, text):
    return harness.source_line(os.path.join(HERE, name), text)


class NativeRecord(TempDirCase):
    def record(self, name, *cmd, code=0):
        out = self.path(name)
        r = leakdiff("record", "-o", out, "--", *cmd, cwd=self.tmp)
        self.assertEqual(r.returncode, code, r.stderr)
        return r, out

    def test_static_function_exact_counts(self):
        _, a = self.record("a.snap", STATIC, "10000")
        _, b = self.record("b.snap", STATIC, "30000")
        d = diff_json(a, b)
        top = d["sites"][0]
        f = top["frames"][0]
        self.assertEqual((f["function"], f["line"]), ("new_record", marker("prog_static.c", "RECORD-SITE")))
        self.assertTrue(f["file"].endswith("prog_static.c"), f)
        self.assertEqual((top["count_before"], top["count_after"], top["count_delta"]), (1000, 3000, 2000))
        self.assertIn("keep_every_tenth", [x["function"] for x in top["frames"]])
        self.assertEqual(load_snap(b)["meta"]["runtime"], "native")
        r = leakdiff("diff", a, b)
        self.assertIn("prog_static.c:%d in new_record" % marker("prog_static.c", "RECORD-SITE"), r.stdout)
        # glibc's frames name the library, without a line, whether or not
        # its debug package is installed (this machine's may have one).
        libc = [x for x in top["frames"] if os.path.basename(x["file"]).startswith("libc.so")]
        self.assertTrue(libc, top["frames"])
        for x in libc:
            self.assertNotIn("line", x)
        self.assertIn("__libc_start_call_main", [x["function"] for x in libc])

    def test_sampling_estimates(self):
        out = self.path("s.snap")
        r = leakdiff("record", "--sample=256", "-o", out, "--", STATIC, "30000", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = load_snap(out)
        self.assertEqual(doc["meta"]["sample"], 256)
        line = marker("prog_static.c", "RECORD-SITE")
        est = sum(c for c, _b, fr in doc["sites"] if doc["frames"][fr[0]][1] == line)
        # 3,000 records really live; a Poisson sample by bytes estimates them
        self.assertGreater(est, 2400)
        self.assertLess(est, 3600)
        self.assertIn("sampled every 256 B", leakdiff("show", out).stdout)

    def test_follow_exec_keeps_every_snapshot(self):
        """With LEAKDIFF_FOLLOW_EXEC several agents share the pipe, each
        counting its snapshots from 1: a forked child that runs the program
        and the shell that execs it last. Neither at-exit snapshot may
        overwrite the other: the child's gets a number, the command's own
        (same pid after exec) is FILE."""
        out = self.path("run.snap")
        env = {"LEAKDIFF_FOLLOW_EXEC": "1"}
        r = harness.run([harness.LEAKDIFF, "record", "-o", out, "--", "/bin/sh", "-c",
                         '"$0" 100; exec "$0" 200', STATIC], env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")),
                         ["run.1.snap", "run.snap"])
        line = marker("prog_static.c", "RECORD-SITE")

        def records(path):
            doc = load_snap(path)
            return sum(c for c, _b, fr in doc["sites"] if doc["frames"][fr[0]][1] == line)
        self.assertEqual(records(self.path("run.1.snap")), 10)   # keeps every tenth of 100
        self.assertEqual(records(out), 20)

    def test_cxx_method_demangled(self):
        if not CXX:
            self.skipTest("no C++ compiler at build time")
        _, a = self.record("a.snap", CXX, "1000")
        _, b = self.record("b.snap", CXX, "3000")
        d = diff_json(a, b)
        functions = [x["function"] for x in d["sites"][0]["frames"]]
        self.assertIn("shop::PriceCache::remember", functions)

    def test_threads_fork_exec(self):
        r, out = self.record("t.snap", THREADS, "20000")
        sites = load_snap(out)
        doc = sites
        line = marker("prog_threads.c", "RETAIN-SITE")
        kept = 0
        for count, _bytes, frames in doc["sites"]:
            fr = doc["frames"][frames[0]]
            if fr[1] == line and doc["strings"][fr[2]] == "retain":
                kept += count
        self.assertEqual(kept, 400)  # 4 threads x 200 kept, half freed by main
        halfway = self.path("t.1.snap")
        self.assertTrue(os.path.exists(halfway), r.stderr)
        self.assertEqual(load_snap(halfway)["meta"]["label"], "halfway")

    def test_rebuilt_elsewhere_with_code_above(self):
        """Release 2 is built in another directory with functions added above
        the leak and leaks more: one matched growing site, and a limit fails."""
        src = os.path.join(HERE, "prog_static.c")
        with open(src) as f:
            text = f.read()
        added = "".join("static int added_in_release_2_%d(int x) { return x * %d; }\n" % (i, i)
                        for i in range(3))
        builds = []
        for name, body in (("build-1.0", text), ("build-1.1", text.replace("#include <stdlib.h>",
                           "#include <stdlib.h>\n" + added, 1))):
            root = self.path(name)
            os.mkdir(root)
            with open(os.path.join(root, "prog.c"), "w") as f:
                f.write(body)
            cc = os.environ.get("CC", "cc")
            subprocess.run([cc, "-g", "-O1", "-w", "-I" + os.path.join(HERE, "..", "..", "agents", "native"),
                            "-o", "prog", "prog.c"], cwd=root, check=True)
            builds.append(root)
        a, b = self.path("r1.snap"), self.path("r2.snap")
        for root, out, n in ((builds[0], a, "10000"), (builds[1], b, "20000")):
            r = leakdiff("record", "-q", "-o", out, "--", "./prog", n, cwd=root)
            self.assertEqual(r.returncode, 0, r.stderr)
        d = diff_json(a, b)
        rows = [x for x in d["sites"] if x["frames"][0]["function"] == "new_record"]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual((rows[0]["state"], rows[0]["count_before"], rows[0]["count_after"]),
                         ("kept", 1000, 2000))
        self.assertNotEqual(rows[0]["match"], "exact")
        self.assertEqual(rows[0]["frames"][0]["file"], "prog.c")
        r = leakdiff("diff", "--max-total-growth=10%", "--format=markdown", a, b)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("exceeds --max-total-growth=10%", r.stdout)

    def test_default_depth_is_the_documented_16(self):
        """README, leakdiff-record(1) and `--depth`'s help say 16 frames:
        `leakdiff record` without --depth keeps exactly the 16 innermost
        frames of an allocation made 40 calls deep. The agent's own default
        (LEAKDIFF_DEPTH unset or empty) is pinned to the same 16 by
        tests/native/test_config.c."""
        prog = self.path("deep")
        with open(prog + ".c", "w") as f:
            f.write("#include <stdlib.h>\n"
                    "void *volatile kept;\n"
                    "__attribute__((noinline)) static void *down(int n)\n"
                    "{\n"
                    "\tvoid *p = n ? down(n - 1) : malloc(4243);\n"
                    "\t__asm__ volatile(\"\" ::: \"memory\");\n"
                    "\treturn p;\n"
                    "}\n"
                    "int main(void)\n"
                    "{\n"
                    "\tkept = down(40);\n"
                    "\treturn 0;\n"
                    "}\n")
        subprocess.run([os.environ.get("CC", "cc"), "-g", "-O0", "-o", prog, prog + ".c"], check=True)

        def deep_site(doc):
            rows = [fr for _c, b, fr in doc["sites"] if b == 4243]
            self.assertEqual(len(rows), 1, doc["sites"])
            return rows[0]

        _, out = self.record("deep.snap", prog)
        doc = load_snap(out)
        self.assertEqual(doc["meta"]["depth"], 16)
        self.assertEqual(len(deep_site(doc)), 16)

    def build(self, name, text):
        prog = self.path(name)
        with open(prog + ".c", "w") as f:
            f.write(text)
        subprocess.run([os.environ.get("CC", "cc"), "-g", "-O0", "-o", prog, prog + ".c"], check=True)
        return prog

    def kept_blocks(self, path, size):
        return sum(c for c, b, _fr in load_snap(path)["sites"] if b == size * c)

    def test_underscore_exit_takes_the_exit_snapshot(self):
        """_exit() and _Exit() skip destructors; the agent takes the at-exit
        snapshot in them, so a program that succeeded stays a success and
        its status is passed on, also from a signal handler. A vfork()
        child's _exit must neither snapshot the parent's heap nor stop the
        parent's agent."""
        prog = self.build("quick", "#include <stdlib.h>\n"
                          "#include <string.h>\n"
                          "#include <sys/wait.h>\n"
                          "#include <unistd.h>\n"
                          "#include <signal.h>\n"
                          "void *volatile kept[64];\n"
                          "static void on_term(int sig)\n"
                          "{\n"
                          "\t_exit(sig == SIGTERM ? 0 : 1);\n"
                          "}\n"
                          "int main(int argc, char **argv)\n"
                          "{\n"
                          "\tint status = atoi(argv[2]);\n"
                          "\tfor (int i = 0; i < 40; i++)\n"
                          "\t\tkept[i] = malloc(4321);\n"
                          "\tif (strcmp(argv[1], \"vfork\") == 0) {\n"
                          "\t\tpid_t pid = vfork();\n"
                          "\t\tif (pid == 0)\n"
                          "\t\t\t_exit(0);\n"
                          "\t\twaitpid(pid, NULL, 0);\n"
                          "\t\tfor (int i = 40; i < 50; i++)\n"
                          "\t\t\tkept[i] = malloc(4321);\n"
                          "\t\treturn status;\n"
                          "\t}\n"
                          "\tif (strcmp(argv[1], \"signal\") == 0) {\n"
                          "\t\tsignal(SIGTERM, on_term);\n"
                          "\t\traise(SIGTERM);\n"
                          "\t}\n"
                          "\tif (strcmp(argv[1], \"_Exit\") == 0)\n"
                          "\t\t_Exit(status);\n"
                          "\t_exit(status);\n"
                          "}\n")
        for how, status, kept in (("_exit", 0, 40), ("_Exit", 0, 40), ("_exit", 3, 40), ("vfork", 0, 50),
                                   ("signal", 0, 40)):
            with self.subTest(how=how, status=status):
                for p in os.listdir(self.tmp):
                    if p.endswith(".snap"):
                        os.unlink(self.path(p))
                r, out = self.record("q.snap", prog, how, str(status), code=status)
                self.assertNotIn("without an at-exit snapshot", r.stderr)
                self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")
                self.assertEqual(self.kept_blocks(out, 4321), kept)
                self.assertEqual(sorted(p for p in os.listdir(self.tmp) if p.endswith(".snap")), ["q.snap"])

    def test_dash_script(self):
        """dash, Debian's /bin/sh, always ends with _exit(): a script it
        runs is recorded with its status 0 and an at-exit snapshot."""
        if os.path.basename(os.path.realpath("/bin/sh")) != "dash":
            self.skipTest("/bin/sh is not dash")
        script = self.path("job.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nset -e\nx=$(echo made)\necho \"$x\"\n\"$1\" 100\n")
        os.chmod(script, 0o755)
        r, out = self.record("sh.snap", script, STATIC)
        self.assertEqual(r.stdout, "made\n")
        self.assertNotIn("without an at-exit snapshot", r.stderr)
        meta = load_snap(out)["meta"]
        self.assertEqual((meta["trigger"], os.path.basename(meta["executable"])), ("exit", "dash"))
        self.assertEqual(sorted(p for p in os.listdir(self.tmp) if p.endswith(".snap")), ["sh.snap"])

    def test_tidy_program_explained(self):
        """A jq-like tool frees everything before it exits: its at-exit
        snapshots are empty whatever its input, and the diff says why and
        how to look while it runs, in every format. Snapshots taken while
        it runs show the index growing, with no note."""
        _, a = self.record("a.snap", TIDY, "1000", "parsed")
        r, b = self.record("b.snap", TIDY, "5000", "parsed")
        self.assertEqual(r.stdout, '{"records":5000,"sum":29992}\n')
        text = leakdiff("diff", a, b)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("\n\n" + "\n".join(TIDY_NOTE) + "\n\n", text.stdout)
        md = leakdiff("diff", "--format=markdown", a, b)
        self.assertIn("\n\n" + "".join("> %s\n" % line for line in TIDY_NOTE) + "\n", md.stdout)
        self.assertIs(diff_json(a, b)["freed_at_exit"], True)
        # While it runs, the index is there: 1,000 then 5,000 records.
        d = diff_json(self.path("a.1.snap"), self.path("b.1.snap"))
        self.assertIs(d["freed_at_exit"], False)
        line = marker("prog_tidy.c", "INDEX-SITE")
        row = [x for x in d["sites"] if x["frames"][0].get("line") == line][0]
        self.assertEqual((row["count_before"], row["count_after"]), (1000, 5000))
        self.assertNotIn(TIDY_NOTE[0], leakdiff("diff", self.path("a.1.snap"), self.path("b.1.snap")).stdout)
        # One run that freed its memory and one that did not: no note.
        _, c = self.record("c.snap", STATIC, "30000")
        self.assertIs(diff_json(a, c)["freed_at_exit"], False)
        for fmt in ("text", "markdown"):
            self.assertNotIn(TIDY_NOTE[0], leakdiff("diff", "--format=" + fmt, a, c).stdout)

    def test_matches_heaptrack_leak_total(self):
        if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
            self.skipTest("heaptrack is not installed (apt-get install heaptrack)")
        _, out = self.record("h.snap", STATIC, "30000")
        ours = load_snap(out)["totals"]["heap_bytes"]
        base = self.path("ht")
        subprocess.run(["heaptrack", "-o", base, STATIC, "30000"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True, timeout=300)
        data = [p for p in os.listdir(self.tmp) if p.startswith("ht")][0]
        text = subprocess.run(["heaptrack_print", self.path(data)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=300).stdout
        m = re.search(r"total memory leaked: ([\d.]+)([KMG]?)", text)
        self.assertIsNotNone(m, text[-2000:])
        unit = {"": 1, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3}[m.group(2)]
        theirs = float(m.group(1)) * unit
        # heaptrack prints two decimals: agree to within its rounding
        self.assertLessEqual(abs(ours - theirs), unit * 0.005 + 0.5, (ours, m.group(0)))


if __name__ == "__main__":
    harness.main()
