#!/usr/bin/env python3
"""Snapshot triggers of Python programs through the real `leakdiff record`:
the peak snapshot of --peak, with exact counts; and snapshots the recorder
asks for (--every, SIGUSR2 sent to the recorder) in a program that handles
SIGUSR2 itself, whose handler must never run."""
import os
import re
import signal
import subprocess
import textwrap
import time

import harness
from harness import PYTHON, TempDirCase, leakdiff, load_snap

# Rises to N Node objects, holds them until the peak snapshot is on disk
# (the agent's thread takes it once the live bytes stop rising), frees
# them all and rises again to M < N.
PEAK_PROGRAM = textwrap.dedent("""\
    import os, sys, time
    class Node:
        __slots__ = ("n",)
    n, m, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    keep = []
    for i in range(n):
        node = Node()  # PEAK-SITE
        keep.append(node)
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    keep.clear()
    for i in range(m):
        node = Node()  # AGAIN-SITE
        keep.append(node)
    print("kept", len(keep))
    """)


# Handles SIGUSR2 itself and counts how often its handler ran; says ready
# once the handler is in place, keeps an object every 10 ms until the file named by its argument exists (at most
# 60 s), then prints the count.
OWN_HANDLER_PROGRAM = textwrap.dedent("""\
    import os, signal, sys, time
    ran = 0
    def rotate_logs(signum, frame):
        global ran
        ran += 1
    signal.signal(signal.SIGUSR2, rotate_logs)
    print("ready", flush=True)
    keep = []
    deadline = time.time() + 60
    while not os.path.exists(sys.argv[1]) and time.time() < deadline:
        keep.append(object())
        time.sleep(0.01)
    print("handler ran", ran)
    """)

REPLACED = ("leakdiff: agent: the program installed its own handler for signal %d, so that signal "
            "sent to the program itself no longer takes a snapshot (sent to leakdiff record, and "
            "--every, still do); choose a signal the program leaves alone with --signal\n"
            % signal.SIGUSR2)


def site_count(doc, filename, line):
    """Blocks of the sites whose innermost frame is filename:line."""
    total = 0
    for count, _size, frames in doc["sites"]:
        fr = doc["frames"][frames[0]]
        if doc["strings"][fr[0]] == filename and fr[1] == line:
            total += count
    return total


class Peak(TempDirCase):
    def run_peak(self, *opts):
        prog = self.path("peak.py")
        with open(prog, "w") as f:
            f.write(PEAK_PROGRAM)
        line = harness.source_line(prog, "PEAK-SITE")
        again = harness.source_line(prog, "AGAIN-SITE")
        out, peak_file = self.path("run.snap"), self.path("run.peak.snap")
        r = leakdiff("record", "--peak", *opts, "-o", out, "--", PYTHON, prog, "20000", "10000", peak_file,
                     cwd=self.tmp, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "kept 10000\n")
        self.assertIn("leakdiff: wrote %s (snapshot " % peak_file, r.stderr)
        peak = load_snap(peak_file)
        self.assertEqual((peak["meta"]["trigger"], peak["meta"]["label"]), ("peak", "peak"))
        self.assertEqual(site_count(peak, prog, line), 20000, r.stderr)
        self.assertEqual(site_count(peak, prog, again), 0)
        end = load_snap(out)
        self.assertEqual(end["meta"]["trigger"], "exit")
        self.assertEqual(site_count(end, prog, line), 0)
        self.assertEqual(site_count(end, prog, again), 10000)
        # Only the peak file and the at-exit file: nothing numbered.
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")),
                         ["run.peak.snap", "run.snap"])
        # The at-exit snapshot comes last; the peak file is the last peak.
        wrote = re.findall(r"^leakdiff: wrote (\S+) \(snapshot (\d+), (\w+)", r.stderr, re.M)
        self.assertEqual(wrote[-1], (out, str(end["meta"]["seq"]), "exit"))
        last_peak = [w for w in wrote if w[0] == peak_file][-1]
        self.assertEqual(int(last_peak[1]), peak["meta"]["seq"])

    def test_peak_on_the_hooks(self):
        self.run_peak()

    def test_peak_with_tracemalloc(self):
        self.run_peak("--tracemalloc")


class OwnHandler(TempDirCase):
    """The program handles SIGUSR2 itself: the recorder's requests travel on
    the request channel and never run the program's handler."""

    def program(self):
        prog = self.path("rotate.py")
        with open(prog, "w") as f:
            f.write(OWN_HANDLER_PROGRAM)
        return prog

    def test_every_never_runs_the_programs_handler(self):
        out = self.path("run.snap")
        r = leakdiff("record", "--every=100ms", "-o", out, "--", PYTHON, self.program(),
                     self.path("run.2.snap"), cwd=self.tmp, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ready\nhandler ran 0\n")
        for name in ("run.1.snap", "run.2.snap"):
            self.assertEqual(load_snap(self.path(name))["meta"]["trigger"], "interval", name)
        self.assertEqual(load_snap(out)["meta"]["trigger"], "exit")
        # The agent notices its handler was replaced at the first snapshot
        # after, and says so once, naming --signal.
        self.assertEqual(r.stderr.count(REPLACED), 1, r.stderr)
        self.assertEqual(r.stderr.count("--signal"), 1, r.stderr)

    def test_usr2_to_the_recorder_never_runs_the_programs_handler(self):
        out = self.path("run.snap")
        p = subprocess.Popen([harness.LEAKDIFF, "record", "-o", out, "--", PYTHON, self.program(),
                              self.path("run.1.snap")],
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

    def test_usr2_sent_to_the_program_runs_its_handler(self):
        """What the warning is about: a signal sent to the program itself
        is the program's now, and takes no snapshot."""
        out = self.path("run.snap")
        p = subprocess.Popen([harness.LEAKDIFF, "record", "-o", out, "--", PYTHON, self.program(),
                              self.path("go")],
                             env=harness.program_env(), cwd=self.tmp, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            target = int(subprocess.check_output(["pgrep", "-P", str(p.pid)]).split()[0])
            os.kill(target, signal.SIGUSR2)
            # The handler runs at the program's next bytecode; it then
            # stops at the file.
            time.sleep(0.5)
            open(self.path("go"), "w").close()
            stdout, stderr = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, stderr)
        self.assertEqual(stdout, "handler ran 1\n")
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith(".snap")), ["run.snap"])
        self.assertEqual(stderr.count(REPLACED), 1, stderr)


if __name__ == "__main__":
    harness.main()
