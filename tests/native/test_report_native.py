#!/usr/bin/env python3
"""The report's native rows through the real `leakdiff record` and
`leakdiff diff` (issue 17, item 5): prog_wrap keeps blocks through
libwrap's allocator wrapper (wrap_mem_alloc, under the named library
function wrap_store) from three functions of its own, and is stripped, so
those three are known only by offset. The three rows would print alike;
the report names the library caller and shows the frame where they part,
unresolved frames read "module+0xOFFSET" (and are marked so in JSON),
symbol versions are gone, and library and program files look alike."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import TempDirCase, diff_json, leakdiff, load_snap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WRAP = os.environ.get("NATIVE_PROG_WRAP")
OFFSET = re.compile(r"^prog_wrap\+0x[0-9a-f]+$")


def marker(text):
    return harness.source_line(os.path.join(HERE, "libwrap.c"), text)


class NativeReport(TempDirCase):
    def pair(self):
        out = []
        for name, n in (("a.snap", 10), ("b.snap", 30)):
            path = self.path(name)
            r = leakdiff("record", "-q", "-o", path, "--", WRAP, str(n), cwd=self.tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            out.append(path)
        return out

    def test_rows_alike_show_where_they_part(self):
        a, b = self.pair()
        r = leakdiff("diff", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        heads = [i for i, line in enumerate(lines) if line.endswith("in wrap_mem_alloc")]
        self.assertEqual(len(heads), 3, r.stdout)
        parted = []
        for i in heads:
            self.assertIn("libwrap.c:%d in wrap_mem_alloc" % marker("WRAP-SITE"), lines[i])
            # The caller is the named library function, not an offset in the program.
            self.assertTrue(lines[i + 1].strip().startswith("called from "), lines[i + 1])
            self.assertTrue(lines[i + 1].strip().endswith("libwrap.c:%d in wrap_store" % marker("STORE-SITE")),
                            lines[i + 1])
            via = lines[i + 2].strip()
            self.assertTrue(via.startswith("by way of "), r.stdout)
            parted.append(via[len("by way of "):])
        for p in parted:
            self.assertRegex(p, OFFSET)
        self.assertEqual(len(set(parted)), 3, parted)
        # The markdown report tells them apart the same way.
        r = leakdiff("diff", "--format=markdown", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = re.findall(r"<br>by way of (prog\\_wrap\+0x[0-9a-f]+) \|", r.stdout)
        self.assertEqual(sorted(m.replace("\\_", "_") for m in md), sorted(parted), r.stdout)

    def test_json_marks_unresolved_frames(self):
        a, b = self.pair()
        d = diff_json(a, b)
        self.assertEqual(sorted(s["count_delta"] for s in d["sites"]), [20, 40, 60])
        for s in d["sites"]:
            frames = s["frames"]
            self.assertEqual(frames[0]["function"], "wrap_mem_alloc")
            self.assertEqual(frames[s["caller"]]["function"], "wrap_store")
            for f in frames:
                self.assertIn(f["kind"], ("native", "inlined"), f)
                self.assertNotIn("@", f["function"], f)
                if OFFSET.match(f["function"]):
                    self.assertIs(f.get("unresolved"), True, f)
                else:
                    self.assertNotIn("unresolved", f)
            self.assertTrue(any(f.get("unresolved") for f in frames), frames)

    def test_library_and_program_frames_look_alike(self):
        a, b = self.pair()
        r = leakdiff("diff", "--verbose", "--top=1", a, b)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The frames of the site table (the header above it may print the
        # command, a path, on an indented line of its own).
        table = r.stdout.split("Growth by allocation site", 1)[1]
        frames = [line.strip() for line in table.splitlines() if line.startswith("      ")]
        # Frames without a line: "file in function" or "module+0xOFFSET", never a path.
        no_line = [f for f in frames if "libc.so" in f or "prog_wrap" in f]
        self.assertTrue(no_line, r.stdout)
        for f in no_line:
            self.assertNotIn("/", f, r.stdout)
            self.assertNotIn(":0", f, r.stdout)
            self.assertNotIn("@", f, r.stdout)
        doc = load_snap(b)
        self.assertFalse([s for s in doc["strings"] if "@@" in s])


if __name__ == "__main__":
    if not WRAP:
        print("1..0 # SKIP NATIVE_PROG_WRAP not set")
        sys.exit(0)
    harness.main()
