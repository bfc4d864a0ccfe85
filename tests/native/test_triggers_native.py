#!/usr/bin/env python3
"""Snapshot triggers of a native program through the real `leakdiff record`:
the peak snapshot of --peak (prog_peak.c, a heap that rises to N blocks,
falls to none and rises again to M < N), with exact counts; and snapshots
the recorder asks for (--every, SIGUSR2 sent to the recorder) in a program
that handles SIGUSR2 itself (prog_ownsig.c), whose handler must never run."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import TempDirCase, leakdiff, load_snap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEAK = os.environ.get("NATIVE_PROG_PEAK")
OWNSIG = os.environ.get("NATIVE_PROG_OWNSIG")
REPLACED = ("leakdiff: agent: the program installed its own handler for signal %d, so that signal "
            "sent to the program itself no longer takes a snapshot (sent to leakdiff record, and "
            "--every, still do); choose a signal the program leaves alone with --signal\n"
            % signal.SIGUSR2)


def site_blocks(doc, function, line=None):
    """Blocks and bytes of the sites whose innermost frame is in function
    (at line, when given)."""
    count = size = 0
    for c, b, frames in doc["sites"]:
        fr = doc["frames"][frames[0]]
        if doc["strings"][fr[2]] == function and (line is None or fr[1] == line):
            count += c
            size += b
    return count, size


class Peak(TempDirCase):
    def test_peak_snapshot_holds_the_high_water_mark(self):
        line = harness.source_line(os.path.join(HERE, "prog_peak.c"), "PEAK-SITE")
        out = self.path("run.snap")
        r = leakdiff("record", "--peak", "-o", out, "--", PEAK, "3000", "1000", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "kept 1000\n")
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")),
                         ["run.peak.snap", "run.snap"])
        peak = load_snap(self.path("run.peak.snap"))
        self.assertEqual((peak["meta"]["trigger"], peak["meta"]["label"]), ("peak", "peak"))
        self.assertEqual(site_blocks(peak, "peak_block", line), (3000, 3000 * 1000))
        end = load_snap(out)
        self.assertEqual(end["meta"]["trigger"], "exit")
        self.assertEqual(site_blocks(end, "peak_block", line), (1000, 1000 * 1000))
        # No free before the top: one peak snapshot, announced as such.
        wrote = re.findall(r"^leakdiff: wrote (\S+) \(snapshot (\d+), (\w+)", r.stderr, re.M)
        self.assertEqual(wrote, [(self.path("run.peak.snap"), "1", "peak"), (out, "2", "exit")], r.stderr)

    def test_higher_peak_at_exit_replaces_the_first(self):
        """Up to 1,000 blocks, down to none, up to 3,000 and exit: the first
        top is written at its first free, the second, with no free after
        it, just before the at-exit snapshot, and replaces the first."""
        line = harness.source_line(os.path.join(HERE, "prog_peak.c"), "PEAK-SITE")
        out = self.path("run.snap")
        r = leakdiff("record", "--peak", "-o", out, "--", PEAK, "1000", "3000", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        wrote = re.findall(r"^leakdiff: wrote (\S+) \(snapshot (\d+), (\w+), ([\d,]+) blocks", r.stderr, re.M)
        self.assertEqual([w[:3] for w in wrote], [(self.path("run.peak.snap"), "1", "peak"),
                                                   (self.path("run.peak.snap"), "2", "peak"),
                                                   (out, "3", "exit")], r.stderr)
        peak = load_snap(self.path("run.peak.snap"))
        self.assertEqual(peak["meta"]["seq"], 2)
        self.assertEqual(site_blocks(peak, "peak_block", line), (3000, 3000 * 1000))
        self.assertEqual(site_blocks(load_snap(out), "peak_block", line), (3000, 3000 * 1000))

    def test_peak_and_sample_exclude_each_other(self):
        r = leakdiff("record", "--peak", "--sample=4KiB", "-o", self.path("x.snap"), "--", PEAK, "1", "1",
                     cwd=self.tmp)
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("--peak follows the exact live bytes; it cannot be used with --sample", r.stderr)

    def test_no_peak_file_without_the_option(self):
        r = leakdiff("record", "-o", self.path("run.snap"), "--", PEAK, "3000", "1000", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["run.snap"])


class OwnHandler(TempDirCase):
    """The program handles SIGUSR2 itself: the recorder's requests travel on
    the request channel and never run the program's handler."""

    def test_every_never_runs_the_programs_handler(self):
        out = self.path("run.snap")
        r = leakdiff("record", "--every=100ms", "-o", out, "--", OWNSIG, self.path("run.2.snap"),
                     cwd=self.tmp, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ready\nhandler ran 0\n")
        for name in ("run.1.snap", "run.2.snap"):
            doc = load_snap(self.path(name))
            self.assertEqual(doc["meta"]["trigger"], "interval", name)
            self.assertGreater(site_blocks(doc, "main")[0], 0, name)
        self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")
        # The agent notices its handler was replaced at the first snapshot
        # after, and says so once, naming --signal.
        self.assertEqual(r.stderr.count(REPLACED), 1, r.stderr)
        self.assertEqual(r.stderr.count("--signal"), 1, r.stderr)

    def test_usr2_to_the_recorder_never_runs_the_programs_handler(self):
        out = self.path("run.snap")
        p = subprocess.Popen([harness.LEAKDIFF, "record", "-o", out, "--", OWNSIG, self.path("run.1.snap")],
                             env=harness.program_env(), cwd=self.tmp, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            # The recorder passes the signal on once it has read the agent's
            # hello and ignores it before, so ask until the file is there.
            deadline = time.time() + 60
            while not os.path.exists(self.path("run.1.snap")) and time.time() < deadline:
                p.send_signal(signal.SIGUSR2)
                time.sleep(0.2)
            stdout, stderr = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, stderr)
        self.assertEqual(stdout, "handler ran 0\n")
        self.assertEqual(load_snap(self.path("run.1.snap"))["meta"]["trigger"], "signal")
        self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")
        self.assertEqual(stderr.count(REPLACED), 1, stderr)


if __name__ == "__main__":
    harness.main()
