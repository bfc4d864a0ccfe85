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

import harness
from harness import DATA, SOURCE, TempDirCase, leakdiff, load_snap

BEFORE = os.path.join(DATA, "before.snap")
AFTER = os.path.join(DATA, "after.snap")


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
        self.assertIn("Output format: text (default) or json", text)
        self.assertIn("Leave out rows of less than SIZE", text)

    def test_diff_keeps_its_own(self):
        text = self.help_text("diff")
        self.assertIn("Output format: text (default), json or markdown", text)
        self.assertIn("  1    a growth limit was exceeded", text)
        self.assertIn("byte change", text)

    def test_unknown_format(self):
        r = leakdiff("show", "--format=markdown", AFTER)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.splitlines()[0],
                         "leakdiff show: unknown format 'markdown' (use text or json)")
        r = leakdiff("diff", "--format=md", BEFORE, AFTER)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.splitlines()[0],
                         "leakdiff diff: unknown format 'md' (use text, json or markdown)")


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
        r = leakdiff("show", self.after)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  container  app.session.Session.registry: list of 1 entry\n", r.stdout)
        self.assertIn("  lru_cache  app.cache.lookup: unbounded lru_cache (maxsize=None) holding 1 entry\n",
                      r.stdout)
        self.assertIn("  garbage    app.session.Session: 1 uncollectable object in gc.garbage\n", r.stdout)
        self.assertIn("  cycles     1 object in reference cycles freed by the snapshot's collection\n", r.stdout)
        self.assertNotRegex(r.stdout, r"\b1 (entries|objects)\b")

    def test_diff_text(self):
        r = leakdiff("diff", "--max-type-growth=0", self.before, self.after)
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
        r = leakdiff("diff", BEFORE, AFTER)
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


if __name__ == "__main__":
    harness.main()
