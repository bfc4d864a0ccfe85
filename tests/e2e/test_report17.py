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


if __name__ == "__main__":
    harness.main()
