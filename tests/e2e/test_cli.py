#!/usr/bin/env python3
"""The command line's contract: bad input gets one clear line naming the
file and the problem, with the documented exit code, and never a crash."""
import gzip
import json
import os
import stat

import harness
from harness import DATA, TempDirCase, leakdiff, load_snap


def valid_doc():
    return load_snap(os.path.join(DATA, "after.snap"))


class BadSnapshots(TempDirCase):
    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def write_doc(self, name, doc):
        return self.write(name, gzip.compress(json.dumps(doc).encode(), mtime=0))

    def assert_rejected(self, path, reason, env=None):
        good = os.path.join(DATA, "before.snap")
        for args in (["diff", good, path], ["diff", path, good], ["show", path]):
            r = leakdiff(*args, env=env)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(r.stdout, "")
            lines = r.stderr.splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertTrue(lines[0].startswith("leakdiff: %s: " % path), lines[0])
            self.assertIn(reason, lines[0])

    def test_empty_file(self):
        self.assert_rejected(self.write("empty.snap", b""), "empty file")

    def test_not_gzip(self):
        self.assert_rejected(self.write("text.snap", b"hello world\n"), "not a gzip file")

    def test_truncated_gzip(self):
        data = open(os.path.join(DATA, "after.snap"), "rb").read()
        self.assert_rejected(self.write("cut.snap", data[: len(data) // 2]), "truncated gzip stream")

    def test_corrupt_gzip(self):
        data = bytearray(open(os.path.join(DATA, "after.snap"), "rb").read())
        for i in range(20, 60):
            data[i] ^= 0x5A
        self.assert_rejected(self.write("corrupt.snap", bytes(data)), "corrupt gzip stream")

    def test_trailing_garbage(self):
        data = open(os.path.join(DATA, "after.snap"), "rb").read()
        self.assert_rejected(self.write("trail.snap", data + b"junk"), "trailing garbage")

    def test_invalid_json(self):
        p = self.write("bad.snap", gzip.compress(b'{"format": "leakdiff-snapshot",,}'))
        self.assert_rejected(p, "invalid JSON at byte ")
        # the parser stops at or just after the stray comma (byte 31)
        offset = int(leakdiff("show", p).stderr.rsplit(" ", 1)[1])
        self.assertIn(offset, (31, 32))

    def test_json_cut_short(self):
        self.assert_rejected(self.write("short.snap", gzip.compress(b'{"format": "leakdiff-snap')),
                             "invalid JSON")

    def test_not_a_snapshot(self):
        self.assert_rejected(self.write_doc("other.snap", {"format": "something-else", "version": 1}),
                             "not a leakdiff snapshot")
        self.assert_rejected(self.write_doc("array.snap", [1, 2, 3]), "not a leakdiff snapshot")

    def test_unknown_version(self):
        doc = valid_doc()
        doc["version"] = 2
        self.assert_rejected(self.write_doc("v2.snap", doc),
                             "unsupported snapshot version 2 (this leakdiff reads version 1)")

    def test_negative_count(self):
        doc = valid_doc()
        doc["types"][0][1] = -5
        self.assert_rejected(self.write_doc("neg.snap", doc), "types[0][1]: negative count -5")

    def test_absurd_count(self):
        doc = valid_doc()
        doc["sites"][0][1] = 2 ** 60
        self.assert_rejected(self.write_doc("huge.snap", doc), "sites[0][1]: count")

    def test_fractional_count(self):
        doc = valid_doc()
        doc["types"][1][2] = 1.5
        self.assert_rejected(self.write_doc("frac.snap", doc), "not a whole number")

    def test_string_index_out_of_range(self):
        doc = valid_doc()
        doc["frames"][0][0] = len(doc["strings"])
        self.assert_rejected(self.write_doc("idx.snap", doc), "frames[0][0]: index")

    def test_frame_index_out_of_range(self):
        doc = valid_doc()
        doc["sites"][1][2].append(999)
        self.assert_rejected(self.write_doc("frame.snap", doc), "out of range")

    def test_type_index_out_of_range(self):
        doc = valid_doc()
        doc["type_sites"][0][0] = 77
        self.assert_rejected(self.write_doc("type.snap", doc), "type_sites[0][0]: index 77 out of range")

    def test_deep_nesting(self):
        doc = b'{"format":"leakdiff-snapshot","version":1,"meta":' + b"[" * 200 + b"]" * 200 + b"}"
        self.assert_rejected(self.write("deep.snap", gzip.compress(doc)), "nested deeper than 64")

    def test_gzip_bomb(self):
        doc = valid_doc()
        doc["strings"].append("x" * 100000)
        p = self.write_doc("bomb.snap", doc)
        self.assert_rejected(p, "decompresses to more than 65536 bytes",
                             env={"LEAKDIFF_MAX_SNAPSHOT": "64KiB"})
        # The same file is fine under the default limit.
        self.assertEqual(leakdiff("show", p).returncode, 0)

    def test_missing_file(self):
        self.assert_rejected(self.path("nope.snap"), "No such file or directory")

    def test_directory(self):
        self.assert_rejected(self.tmp, "is a directory")

    def test_unreadable_file(self):
        p = self.write("secret.snap", b"x")
        os.chmod(p, 0)
        if os.geteuid() != 0:
            self.assert_rejected(p, "Permission denied")
            return
        # Root reads any file; without the capabilities that allow it
        # (as CI, which runs as root, has), the file's mode applies again.
        drop = harness.without_file_capabilities()
        if drop is None:
            self.skipTest("root reads any file, and setpriv cannot drop CAP_DAC_OVERRIDE here")
        with harness.wrapped(drop):
            self.assert_rejected(p, "Permission denied")

    def test_escaped_file_name(self):
        p = self.write("evil\x1b[31mname.snap", b"nope")
        r = leakdiff("show", p)
        self.assertEqual(r.returncode, 2)
        self.assertNotIn("\x1b", r.stderr)
        self.assertIn("evil\\x1b[31mname.snap: not a gzip file", r.stderr)


class Suppressions(TempDirCase):
    def test_bad_suppression_file(self):
        b = os.path.join(DATA, "before.snap")
        p = self.path("sup.txt")
        with open(p, "w") as f:
            f.write("# fine\nleak:\n")
        r = leakdiff("diff", "--suppress=" + p, b, b)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "leakdiff: %s: line 2: empty pattern\n" % p)
        r = leakdiff("diff", "--suppress=" + self.path("missing.txt"), b, b)
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.txt: No such file or directory", r.stderr)


class Usage(TempDirCase):
    def assert_usage(self, args, code, text):
        r = leakdiff(*args)
        self.assertEqual(r.returncode, code, r.stderr)
        self.assertIn(text, r.stderr)

    def test_diff_needs_two(self):
        self.assert_usage(["diff", os.path.join(DATA, "before.snap")], 2, "give two snapshots")

    def test_diff_too_many(self):
        b = os.path.join(DATA, "before.snap")
        self.assert_usage(["diff"] + [b] * 257, 2, "too many snapshots (at most 256)")

    def test_bad_options(self):
        b = os.path.join(DATA, "before.snap")
        self.assert_usage(["diff", "--top=x", b, b], 2, "--top takes a whole number")
        self.assert_usage(["diff", "--format=xml", b, b], 2, "unknown format 'xml'")
        self.assert_usage(["diff", "--min-bytes=lots", b, b], 2, "--min-bytes takes a size")
        self.assert_usage(["diff", "--by=module", b, b], 2, "--by takes type, site or all")
        self.assert_usage(["diff", "--color=sometimes", b, b], 2, "--color takes auto, always or never")
        self.assert_usage(["diff", "--no-such-option", b, b], 2, "unrecognized option")
        self.assert_usage(["diff", "--match=fuzzy", b, b], 2, "--match takes graded, exact or function")
        self.assert_usage(["diff", "--max-total-growth=lots", b, b], 2, "--max-total-growth takes")
        self.assert_usage(["diff", "--max-total-growth=-3%", b, b], 2, "--max-total-growth takes")
        self.assert_usage(["diff", "--max-site-growth=1Q", b, b], 2, "--max-site-growth takes")
        self.assert_usage(["diff", "--max-type-growth=-1", b, b], 2, "--max-type-growth takes")
        self.assert_usage(["show", "--format=markdown", b], 2, "unknown format 'markdown'")
        self.assert_usage(["show"], 2, "give a snapshot")

    def test_unknown_command(self):
        self.assert_usage(["frobnicate"], 2, "'frobnicate' is not a command")
        self.assert_usage([], 2, "Usage")

    def test_help_and_version(self):
        r = leakdiff("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("record", "diff", "show"):
            self.assertIn(word, r.stdout)
        r = leakdiff("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^leakdiff \d+\.\d+\.\d+\n$")
        r = leakdiff("diff", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Exit status", r.stdout)
        self.assertIn("--min-bytes", r.stdout)
        r = leakdiff("record", "--help")
        self.assertIn("127", r.stdout)

    def test_record_command_not_found(self):
        self.assert_usage(["record", "-o", self.path("x.snap"), "--", "no-such-command-xyz"], 127,
                          "leakdiff: no-such-command-xyz: command not found")

    def test_record_not_executable(self):
        p = self.path("script.py")
        with open(p, "w") as f:
            f.write("#!/usr/bin/env python3\n")
        os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
        if os.geteuid() == 0:
            # root may execute anything with an x bit, so take away the file's type instead
            os.remove(p)
            os.mkdir(p)
        self.assert_usage(["record", "-o", self.path("x.snap"), "--", p], 126, "leakdiff: " + p)

    def test_record_agent_never_starts(self):
        # the Python agent forced on a program that is not Python
        self.assert_usage(["record", "--runtime=python", "-o", self.path("x.snap"), "--", "true"], 125,
                          "the leakdiff agent never started")
        self.assertFalse(os.path.exists(self.path("x.snap")))

    def test_record_without_command(self):
        self.assert_usage(["record", "-o", self.path("x.snap")], 125, "give a command to run")

    def test_record_bad_options(self):
        self.assert_usage(["record", "--every=soon", "--", "python3", "-c", "1"], 125, "--every takes a duration")
        self.assert_usage(["record", "--depth=0", "--", "python3", "-c", "1"], 125, "--depth takes")
        self.assert_usage(["record", "--signal=KILL", "--", "python3", "-c", "1"], 125, "--signal takes")
        self.assert_usage(["record", "--runtime=ruby", "--", "python3", "-c", "1"], 125, "--runtime takes")


if __name__ == "__main__":
    harness.main()
