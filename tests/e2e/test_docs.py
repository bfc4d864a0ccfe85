#!/usr/bin/env python3
"""The options the binary has are the options its man pages and shell
completions know: every long option in `leakdiff CMD --help` must be
documented in leakdiff-CMD(1) and offered by the bash, zsh and fish
completions, and the completions must really complete."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import SOURCE, leakdiff

COMMANDS = ("record", "diff", "show")
ARGP_BUILTIN = {"help", "usage", "version"}


def long_options(cmd=None):
    r = leakdiff(*([cmd] if cmd else []), "--help")
    assert r.returncode == 0, r.stderr
    return set(re.findall(r"^\s+(?:-\w, )?--([a-z][a-z-]*)", r.stdout, re.M)) - ARGP_BUILTIN


def read(*parts):
    with open(os.path.join(SOURCE, *parts)) as f:
        return f.read()


class ManPages(unittest.TestCase):
    def test_every_option_documented(self):
        for cmd in COMMANDS:
            page = read("man", "leakdiff-%s.1.scd" % cmd)
            for opt in sorted(long_options(cmd)):
                with self.subTest(command=cmd, option=opt):
                    self.assertRegex(page, r"\*--%s\*" % re.escape(opt))

    def test_pages_render(self):
        if not shutil.which("scdoc"):
            self.skipTest("scdoc is not installed")
        for page in sorted(os.listdir(os.path.join(SOURCE, "man"))):
            if page.endswith(".scd"):
                with self.subTest(page=page):
                    r = subprocess.run(["scdoc"], input=read("man", page), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, universal_newlines=True)
                    self.assertEqual(r.returncode, 0, r.stderr)

    def test_exit_codes_documented(self):
        page = read("man", "leakdiff.1.scd")
        for code in ("125", "126", "127"):
            self.assertIn(code, page)
        # In the EXIT STATUS tables themselves, each with its meaning.
        statuses = exit_status_rows("leakdiff.1.scd")
        self.assertEqual(list(statuses), ["0", "1", "2", "_N_", "128 + _N_", "125", "126", "127"])
        self.assertIn("recorder failed", statuses["125"])
        self.assertIn("cannot be executed", statuses["126"])
        self.assertIn("not found", statuses["127"])
        self.assertIn("usage error", statuses["2"])
        record = exit_status_rows("leakdiff-record.1.scd")
        self.assertEqual(list(record), ["125", "126", "127"])
        self.assertIn("recorder failed", record["125"])
        self.assertIn("cannot be executed", record["126"])
        self.assertIn("not found", record["127"])
        # show has no limits, so no status 1 (issue 17: its page no longer
        # lists one).
        for cmd, codes in (("diff", ["0", "1", "2"]), ("show", ["0", "2"])):
            rows = exit_status_rows("leakdiff-%s.1.scd" % cmd)
            self.assertEqual(list(rows), codes, cmd)
            self.assertIn("usage error", rows["2"], cmd)

    def test_exit_codes_are_what_the_tables_say(self):
        """The recorder's own failures give the statuses its table lists."""
        tmp = tempfile.mkdtemp(prefix="leakdiff-docs-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out = os.path.join(tmp, "run.snap")
        cases = {
            "125": ["record", "--no-such-option", "--", "true"],
            "126": ["record", "-o", out, "--", tmp],
            "127": ["record", "-o", out, "--", os.path.join(tmp, "no-such-program")],
        }
        record = exit_status_rows("leakdiff-record.1.scd")
        for code, args in cases.items():
            with self.subTest(status=code):
                self.assertIn(code, record)
                r = leakdiff(*args, cwd=tmp)
                self.assertEqual(str(r.returncode), code, r.stderr)
        r = leakdiff("diff", "/nonexistent/a.snap", "/nonexistent/b.snap")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("2", exit_status_rows("leakdiff-diff.1.scd"))


def exit_status_rows(page):
    """The status table(s) of a man page's EXIT STATUS section, as an
    ordered {status: meaning}: scdoc table rows "|  STATUS" each followed
    by ":  MEANING" (the header row "[[ *Status*" is left out)."""
    text = read("man", page)
    m = re.search(r"^# EXIT STATUS\n(.*?)(?=^# )", text, re.M | re.S)
    assert m, "%s has no EXIT STATUS section" % page
    rows = {}
    lines = m.group(1).splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith(":"):
            status = line[1:].strip()
            assert status not in rows, "%s lists status %s twice" % (page, status)
            rows[status] = lines[i + 1][1:].strip()
    return rows


class Completions(unittest.TestCase):
    def test_files_know_every_option(self):
        files = {"bash": read("completions", "leakdiff.bash"), "zsh": read("completions", "_leakdiff"),
                 "fish": read("completions", "leakdiff.fish")}
        for cmd in COMMANDS:
            for opt in sorted(long_options(cmd)):
                for shell, text in files.items():
                    with self.subTest(shell=shell, command=cmd, option=opt):
                        pattern = (r"-l %s\b" if shell == "fish" else r"--%s\b") % re.escape(opt)
                        self.assertRegex(text, pattern)
        for cmd in COMMANDS:
            for shell, text in files.items():
                self.assertIn(cmd, text)

    def bash_complete(self, line):
        words = line.split(" ")
        script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\nCOMP_LINE=%r\nCOMP_POINT=%d\n"
                  "_leakdiff\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n"
                  % (os.path.join(SOURCE, "completions", "leakdiff.bash"),
                     " ".join("'%s'" % w for w in words), len(words) - 1, line, len(line)))
        r = subprocess.run(["bash", "--norc", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, cwd=os.path.join(SOURCE, "tests", "data"))
        self.assertEqual(r.returncode, 0, r.stderr)
        return set(r.stdout.split())

    def test_bash_completes(self):
        self.assertEqual(self.bash_complete("leakdiff "), {"record", "diff", "show", "--help", "--usage",
                                                           "--version"})
        self.assertEqual(self.bash_complete("leakdiff d"), {"diff"})
        got = self.bash_complete("leakdiff diff --ma")
        self.assertEqual(got, {"--match", "--max-total-growth", "--max-site-growth", "--max-type-growth"})
        self.assertEqual(self.bash_complete("leakdiff diff --format "), {"text", "json", "markdown", "html"})
        self.assertEqual(self.bash_complete("leakdiff show --format "), {"text", "json", "html"})
        self.assertIn("before.snap", self.bash_complete("leakdiff diff "))
        self.assertIn("--every", self.bash_complete("leakdiff record --e"))
        # --pid offers running processes (this one among them), --duration
        # nothing (a duration, not a file name).
        self.assertEqual(self.bash_complete("leakdiff record --pi"), {"--pid"})
        self.assertEqual(self.bash_complete("leakdiff record --du"), {"--duration"})
        self.assertIn(str(os.getpid()), self.bash_complete("leakdiff record --pid "))
        self.assertEqual(self.bash_complete("leakdiff record --pid 1 --duration "), set())

    def test_fish_completes(self):
        if not shutil.which("fish"):
            self.skipTest("fish is not installed")
        def complete(line):
            r = subprocess.run(["fish", "--no-config", "-c", "source %s; complete -C %s" % (
                os.path.join(SOURCE, "completions", "leakdiff.fish"), "'" + line + "'")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            return {l.split("\t")[0] for l in r.stdout.splitlines()}
        self.assertTrue({"record", "diff", "show"} <= complete("leakdiff "))
        self.assertTrue({"--match", "--max-total-growth"} <= complete("leakdiff diff --m"))
        self.assertNotIn("--match", complete("leakdiff show --m"))
        self.assertTrue({"--pid"} <= complete("leakdiff record --p"))
        self.assertIn(str(os.getpid()), complete("leakdiff record --pid "))

    def test_zsh_parses(self):
        if not shutil.which("zsh"):
            self.skipTest("zsh is not installed")
        r = subprocess.run(["zsh", "-n", os.path.join(SOURCE, "completions", "_leakdiff")],
                           stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    harness.main()
