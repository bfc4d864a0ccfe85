#!/usr/bin/env python3
"""What a new user meets first in the reports and the help (issue 17):
help text that fits and says only what applies, one clear message on a full
disk, warnings for snapshots that do not belong together, counts that agree
with their nouns, quoted and bounded command lines, and a text report laid
out for the terminal's width."""
import gzip
import json
import os
import re
import subprocess

import harness
from harness import DATA, SOURCE, TempDirCase, leakdiff, load_snap

BEFORE = os.path.join(DATA, "before.snap")
AFTER = os.path.join(DATA, "after.snap")
# Wide enough that no line of the reports on the fixtures is wrapped.
WIDE = {"COLUMNS": "400"}


class Help(TempDirCase):
    """Every subcommand's --help, as argp lays it out at its default width."""

    def help_text(self, *cmd):
        r = leakdiff(*cmd, "--help", env={"COLUMNS": "80"})
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_layout(self):
        for cmd in ([], ["record"], ["diff"], ["show"]):
            text = self.help_text(*cmd)
            lines = text.split("\n")
            with self.subTest(cmd=cmd):
                for i, line in enumerate(lines):
                    self.assertFalse(line and not line.strip(), "whitespace-only line %d: %r" % (i + 1, line))
                    self.assertLessEqual(len(line), 79, line)
                # Inside the option and command lists a line that starts
                # in column 0 is one the help formatter wrapped.
                lists = False
                for line in lines:
                    if re.match(r"^ *(-|Commands:)", line):
                        lists = True
                    elif not line:
                        lists = False
                    elif lists:
                        self.assertTrue(line.startswith(" "), "wrapped to column 0: %r" % line)

    def test_show_says_only_what_applies(self):
        text = self.help_text("show")
        self.assertNotIn("markdown", text.lower())
        self.assertNotIn("exit 1", text)
        self.assertNotRegex(text, r"(?m)^\s+1\s")
        self.assertNotIn("limit", text)
        self.assertNotIn("byte change", text)
        self.assertIn("Format: text (default), json or html", text)
        self.assertIn("Leave out rows of less than SIZE", text)

    def test_diff_keeps_its_own(self):
        text = self.help_text("diff")
        self.assertIn("Format: text (default), json, markdown or html", text)
        self.assertIn("  1    a growth limit was exceeded", text)
        self.assertIn("byte change", text)

    def test_unknown_format(self):
        r = leakdiff("show", "--format=markdown", AFTER)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.splitlines()[0],
                         "leakdiff show: unknown format 'markdown' (use text, json or html)")
        r = leakdiff("diff", "--format=md", BEFORE, AFTER)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.splitlines()[0],
                         "leakdiff diff: unknown format 'md' (use text, json, markdown or html)")


class FullDisk(TempDirCase):
    """A report written to /dev/full fails once, with the real cause."""

    def test_dev_full(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        cases = []
        for fmt in ("text", "json", "markdown"):
            cases.append(["diff", "--format=" + fmt, BEFORE, AFTER])
            cases.append(["diff", "--format=" + fmt, "--top=0", "-v", BEFORE, AFTER])
            # A failing limit must not hide the failed write either.
            cases.append(["diff", "--format=" + fmt, "--max-total-growth=1KiB", BEFORE, AFTER])
        for fmt in ("text", "json"):
            cases.append(["show", "--format=" + fmt, AFTER])
        for args in cases:
            with self.subTest(args=args), open("/dev/full", "w") as full:
                r = harness.subprocess.run([harness.LEAKDIFF] + args, stdout=full, stderr=harness.subprocess.PIPE,
                                           env=harness.program_env(), universal_newlines=True)
                self.assertEqual(r.returncode, 2)
                self.assertEqual(r.stderr, "leakdiff: standard output: No space left on device\n")



def write_snap(path, doc):
    with open(path, "wb") as f:
        f.write(gzip.compress(json.dumps(doc).encode(), mtime=0))
    return path


class Grammar(TempDirCase):
    """A count of one takes the singular, in the text and Markdown reports."""

    def setUp(self):
        super().setUp()
        after = load_snap(AFTER)
        strings = after["strings"]
        session = strings.index("app.session.Session")
        for t in after["types"]:
            if t[0] == session:
                t[1] += 1
                t[2] += 56
        for h in after["hints"]:
            if h["kind"] == "container":
                h["length"] = 1
            elif h["kind"] == "lru_cache":
                h["currsize"] = 1
            elif h["kind"] == "cycles":
                h["collected"] = 1
        after["hints"].append({"kind": "garbage", "type": "app.session.Session", "count": 1})
        self.after = write_snap(self.path("after.snap"), after)
        before = load_snap(AFTER)
        for h in before["hints"]:
            for key in ("length", "currsize", "collected"):
                if key in h:
                    h[key] = 0
        self.before = write_snap(self.path("before.snap"), before)

    def test_show(self):
        r = leakdiff("show", self.after, env=WIDE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  container  app.session.Session.registry: list of 1 entry\n", r.stdout)
        self.assertIn("  lru_cache  app.cache.lookup: unbounded lru_cache (maxsize=None) holding 1 entry\n",
                      r.stdout)
        self.assertIn("  garbage    app.session.Session: 1 uncollectable object in gc.garbage\n", r.stdout)
        self.assertIn("  cycles     1 object in reference cycles freed by the snapshot's collection\n", r.stdout)
        self.assertNotRegex(r.stdout, r"\b1 (entries|objects)\b")

    def test_diff_text(self):
        r = leakdiff("diff", "--max-type-growth=0", self.before, self.after, env=WIDE)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Likely leak: +1 app.session.Session object (+56 B)", r.stdout)
        self.assertIn("  type app.session.Session grew by +1 object, over --max-type-growth=0\n", r.stdout)
        self.assertIn("  container  app.session.Session.registry: list 0 -> 1 entry (+1)\n", r.stdout)
        self.assertIn("  lru_cache  app.cache.lookup: unbounded lru_cache (maxsize=None) 0 -> 1 entry (+1)\n",
                      r.stdout)
        self.assertIn("  garbage    app.session.Session: 0 -> 1 uncollectable object in gc.garbage\n", r.stdout)
        self.assertIn("  cycles     0 -> 1 object in reference cycles freed by the snapshot's collection\n",
                      r.stdout)
        self.assertNotRegex(r.stdout, r"[ +]1 (entries|objects)\b")
        # Plural stays plural.
        r = leakdiff("diff", BEFORE, AFTER, env=WIDE)
        self.assertIn("list 1,000 -> 3,000 entries (+2,000)", r.stdout)
        self.assertIn("+2,000 app.session.Session objects (+109 KiB)", r.stdout)

    def test_diff_markdown(self):
        r = leakdiff("diff", "--format=markdown", "--max-type-growth=0", self.before, self.after)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Likely leak: **+1 app.session.Session** object\n", r.stdout)
        self.assertIn("**1 limit exceeded:**", r.stdout)
        self.assertIn("- type app.session.Session grew by +1 object, over --max-type-growth=0\n", r.stdout)
        r = leakdiff("diff", "--format=markdown", "--max-type-growth=0", "--max-site-growth=0", BEFORE, AFTER)
        self.assertRegex(r.stdout, r"\*\*\d+ limits exceeded:\*\*")
        self.assertIn("**+2,000 app.session.Session** objects, allocated at", r.stdout)



class Mismatches(TempDirCase):
    """Snapshots that do not belong together are diffed, with a warning."""

    def snap(self, name, **meta):
        doc = load_snap(AFTER)
        for k, v in meta.items():
            if v is None:
                doc["meta"].pop(k, None)
            else:
                doc["meta"][k] = v
        return write_snap(self.path(name), doc)

    def test_reversed_by_time(self):
        expected = ("leakdiff: warning: %s was taken before %s (2026-11-28T12:00:01.000Z against "
                    "2026-11-28T12:00:02.000Z); the diff is reversed\n" % (BEFORE, AFTER))
        for fmt in ("text", "json", "markdown"):
            with self.subTest(fmt=fmt):
                r = leakdiff("diff", "--format=" + fmt, AFTER, BEFORE)
                self.assertEqual(r.returncode, 0)
                self.assertEqual(r.stderr, expected)
                self.assertTrue(r.stdout)
        # The exit status stays the one the limits give.
        r = leakdiff("diff", "--max-site-growth=1", AFTER, BEFORE)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, expected)
        # In order, or the same file twice: nothing to say.
        for pair in ((BEFORE, AFTER), (AFTER, AFTER)):
            r = leakdiff("diff", *pair)
            self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_reversed_by_time_with_offsets(self):
        # 13:30+01:00 is 12:30Z, a quarter of an hour before 12:45Z.
        a = self.snap("a.snap", time="2026-11-28T12:45:00Z")
        b = self.snap("b.snap", time="2026-11-28T13:30:00+01:00")
        r = leakdiff("diff", a, b)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "leakdiff: warning: %s was taken before %s (2026-11-28T13:30:00+01:00 "
                                   "against 2026-11-28T12:45:00Z); the diff is reversed\n" % (b, a))
        self.assertEqual(leakdiff("diff", b, a).stderr, "")

    def test_reversed_by_snapshot_number(self):
        a = self.snap("run.2.snap", time=None, seq=2)
        b = self.snap("run.1.snap", time=None, seq=1)
        r = leakdiff("diff", a, b)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "leakdiff: warning: %s was taken before %s (snapshot 1 against 2 of "
                                   "pid 4250); the diff is reversed\n" % (b, a))
        self.assertEqual(leakdiff("diff", b, a).stderr, "")
        # Numbers of different runs say nothing about order.
        c = self.snap("other.snap", time=None, seq=1, pid=4251)
        self.assertEqual(leakdiff("diff", a, c).stderr, "")
        d = self.snap("cmd.snap", time=None, seq=1, command=["python3", "other.py"])
        self.assertEqual(leakdiff("diff", a, d).stderr, "")
        # The clocks, when they say, come first.
        e = self.snap("e.snap", time="2026-11-28T12:00:03.000Z", seq=2)
        f = self.snap("f.snap", time="2026-11-28T12:00:04.000Z", seq=1)
        self.assertEqual(leakdiff("diff", e, f).stderr, "")

    def test_different_runtimes(self):
        native = self.snap("native.snap", runtime="native")
        r = leakdiff("diff", BEFORE, native)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "leakdiff: warning: %s is a python snapshot and %s a native one; their "
                                   "sites and types do not compare\n" % (BEFORE, native))
        self.assertIn("Growth by allocation site", r.stdout)

    def test_trend_names_the_pair(self):
        middle = os.path.join(DATA, "middle.snap")
        r = leakdiff("diff", BEFORE, AFTER, middle)
        self.assertEqual(r.returncode, 0)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("leakdiff: warning: %s was taken before %s (" % (middle, AFTER)),
                        lines[0])
        self.assertEqual(leakdiff("diff", BEFORE, middle, AFTER).stderr, "")



def run_bare(args, columns=None, **kw):
    """leakdiff with COLUMNS set to columns, or unset when None."""
    env = harness.program_env()
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([harness.LEAKDIFF] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def golden(name):
    with open(os.path.join(DATA, "golden", name)) as f:
        return f.read()


class Width(TempDirCase):
    """The text report is laid out for the terminal's width."""

    def assert_fits(self, text, width):
        for line in text.splitlines():
            self.assertLessEqual(len(line), width, line)

    def test_width_source(self):
        args = ["diff", "tests/data/before.snap", "tests/data/after.snap"]
        narrow, wide = golden("diff-80col.txt"), golden("diff.txt")
        self.assertNotEqual(narrow, wide)
        # Not a terminal and no COLUMNS: 80.
        self.assertEqual(run_bare(args, cwd=SOURCE).stdout, narrow)
        for bad in ("", "abc", "0", "-5", "80x"):
            self.assertEqual(run_bare(args, columns=bad, cwd=SOURCE).stdout, narrow, bad)
        self.assertEqual(run_bare(args, columns="132", cwd=SOURCE).stdout, wide)
        self.assertEqual(run_bare(args, columns="400", cwd=SOURCE).stdout, wide)
        # JSON and Markdown do not depend on it.
        for fmt in ("json", "markdown"):
            a = run_bare(["diff", "--format=" + fmt] + args[1:], columns="40", cwd=SOURCE).stdout
            b = run_bare(["diff", "--format=" + fmt] + args[1:], columns="400", cwd=SOURCE).stdout
            self.assertEqual(a, b)

    def test_terminal_size_wins(self):
        import fcntl
        import pty
        import struct
        import termios
        master, slave = pty.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            p = subprocess.Popen([harness.LEAKDIFF, "diff", "--color=never", "tests/data/before.snap",
                                  "tests/data/after.snap"], cwd=SOURCE, stdout=slave, stderr=subprocess.PIPE,
                                 env=dict(harness.program_env(), COLUMNS="200"))
            os.close(slave)
            slave = -1
            out = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            self.assertEqual(p.wait(timeout=60), 0)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        self.assertEqual(out.decode().replace("\r\n", "\n"), golden("diff-80col.txt"))

    def test_no_line_over_80(self):
        before, middle, after = BEFORE, os.path.join(DATA, "middle.snap"), AFTER
        moved = os.path.join(DATA, "moved.snap")
        cases = [["diff", before, after], ["diff", "-v", before, after], ["diff", "--top=0", "-v", before, after],
                 ["diff", "-v", before, middle, after], ["diff", "--by=site", "-v", before, moved],
                 ["diff", "--max-total-growth=5%", "--max-site-growth=1", "--max-type-growth=1", before, after],
                 ["diff", "--type-sites=10", "-v", after, before], ["diff", "--color=always", "-v", before, after],
                 ["show", after], ["show", "-v", "--top=0", after]]
        for args in cases:
            for width in (80, 60):
                with self.subTest(args=args, width=width):
                    r = run_bare(args, columns=str(width))
                    self.assertIn(r.returncode, (0, 1), r.stderr)
                    self.assert_fits(re.sub(r"\x1b\[[0-9;]*m", "", r.stdout), width)
                    self.assertIn("\n", r.stdout)

    def test_long_names_cut_with_a_mark(self):
        doc = load_snap(AFTER)
        strings = doc["strings"]
        long_file = "/srv/app/" + "deeply/" * 20 + "nested_module.py"
        long_func = "Handler." + "x" * 120 + "_end"
        long_type = "app." + "Y" * 120 + ".Tail"
        for frame in doc["frames"]:
            if strings[frame[2]] == "remember":
                strings[frame[0]] = long_file
                strings[frame[2]] = long_func
        strings[strings.index("app.session.Session")] = long_type
        path = write_snap(self.path("long.snap"), doc)
        for width in (80, 132):
            with self.subTest(width=width):
                r = run_bare(["diff", "-v", "--top=0", BEFORE, path], columns=str(width))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assert_fits(r.stdout, width)
                cut = [line for line in r.stdout.splitlines() if "…" in line]
                self.assertTrue(cut, r.stdout)
                # What is cut keeps its start and its end around the mark.
                self.assertTrue(any(re.search(r"app\.Y+…Y*\.Tail", line) for line in cut), cut)
                self.assertTrue(any(re.search(r"x…x*_end", line) for line in cut), cut)
                # The location goes below the numbers, never beside them.
                self.assertRegex(r.stdout, r"\n +\+704 KiB +\+10,010 +0 -> 10,010  new\n {6}deeply/deeply/[^\n]*…[^\n]*/nested_module\.py:7\n"
                                 r" {8}in Handler\.x+…x+_end\n")
        # Names that fit are never cut.
        r = run_bare(["diff", BEFORE, AFTER], columns="80")
        self.assertNotIn("…", r.stdout)


class CommandLine(TempDirCase):
    """The command in a report's header reads as a shell would take it back."""

    def with_command(self, command, name="cmd.snap"):
        doc = load_snap(AFTER)
        doc["meta"]["command"] = command
        return write_snap(self.path(name), doc)

    def header(self, path, columns="400"):
        r = run_bare(["show", path], columns=columns)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_quoting(self):
        snap = self.with_command(["python3", "my app.py", "a\nb", "it's", "x\\ny", "\x1b[31mred", "", "--k=v,w",
                                  "tab\there"])
        out = self.header(snap)
        self.assertIn("  python3 'my app.py' $'a\\nb' 'it'\\''s' 'x\\ny' $'\\x1b[31mred' '' --k=v,w $'tab\\there'"
                      "  (pid 4250", out)
        self.assertNotIn("\x1b", out)
        # JSON keeps the arguments as they were.
        doc = json.loads(leakdiff("show", "--format=json", snap).stdout)
        self.assertEqual(doc["snapshot"]["meta"]["command"][1:4], ["my app.py", "a\nb", "it's"])

    def test_many_arguments(self):
        argv = ["python3", "app.py"] + [str(i) for i in range(100000)]
        snap = self.with_command(argv)
        out = self.header(snap)
        first = out.splitlines()[0]
        m = re.match(r"^file   \S+  (python3 app\.py 0 1 2 [0-9 ]+) … \(\+([0-9,]+) arguments\)  \(pid 4250, ", first)
        self.assertTrue(m, first[:400])
        shown = m.group(1).split(" ")
        self.assertLessEqual(len(m.group(1)), 200)
        self.assertGreater(len(m.group(1)), 150)
        self.assertEqual(len(shown) + int(m.group(2).replace(",", "")), len(argv))
        self.assertEqual(shown, argv[:len(shown)])
        self.assertLess(len(first), 300)
        # diff too, for both files; JSON keeps every argument.
        r = run_bare(["diff", snap, snap], columns="400")
        self.assertEqual(len([l for l in r.stdout.splitlines() if "arguments)" in l]), 2)
        doc = json.loads(leakdiff("diff", "--format=json", snap, snap).stdout)
        self.assertEqual(doc["after"]["meta"]["command"], argv)
        # At 80 columns the command has a line of its own, and fits in it.
        out = self.header(snap, columns="80")
        lines = out.splitlines()
        self.assertRegex(lines[1], r"^       python3 app\.py 0 1 2 .* … \(\+[0-9,]+ arguments\)$")
        self.assertLessEqual(len(lines[1]), 80)

    def test_one_word_too_long(self):
        snap = self.with_command(["/opt/" + "p" * 300, "--flag"])
        line = self.header(snap).splitlines()[0]
        self.assertRegex(line, r"^file   \S+  /opt/p+… \(\+1 argument\)  \(pid")
        self.assertLess(len(line), 300)



MP_PROGRAM = """\
import multiprocessing, sys
KEEP = []
def work():
    pass
if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    p = multiprocessing.Process(target=work)
    p.start()
    p.join()
    # Now sys.modules has __mp_main__ too, the same module as __main__.
    assert sys.modules["__mp_main__"] is sys.modules["__main__"]
    KEEP.extend(object() for _ in range(int(sys.argv[1])))
"""


class ModuleAliases(TempDirCase):
    """A module under two names in sys.modules (multiprocessing's
    __mp_main__ for __main__) is one module: its containers are reported
    once, under the name the program knows."""

    def test_mp_main_reported_once(self):
        prog = self.path("mp.py")
        with open(prog, "w") as f:
            f.write(MP_PROGRAM)
        snaps = []
        for n in (100, 300):
            out = self.path("mp%d.snap" % n)
            r = leakdiff("record", "-q", "-o", out, "--", harness.PYTHON, prog, str(n), cwd=self.tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            snaps.append(out)
        hints = [h for h in load_snap(snaps[1])["hints"] if h.get("kind") == "container"]
        names = [h["name"] for h in hints if h["name"].endswith(".KEEP")]
        self.assertEqual(names, ["__main__.KEEP"])
        self.assertEqual([h["length"] for h in hints if h["name"] == "__main__.KEEP"], [300])
        r = leakdiff("diff", "--format=json", *snaps)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [h for h in json.loads(r.stdout)["hints"] if h.get("kind") == "container"]
        self.assertEqual([(h["name"], h["before"], h["after"]) for h in rows if "KEEP" in h["name"]],
                         [("__main__.KEEP", 100, 300)])

if __name__ == "__main__":
    harness.main()
