#!/usr/bin/env python3
"""Faults end to end: what `leakdiff record` and its agents do when things
go wrong around them. A target killed in the middle of sending a snapshot,
a disk that fills up (a file size limit, a full tmpfs), the recorder
interrupted, a program that closes every descriptor it does not know and
reuses the numbers, threads and processes racing the agent, and a native
program that does everything at once (threads, realloc churn, fork, a
thread exiting, dlopen/dlclose, signals in the middle of malloc).

Every run is bounded by a timeout: a deadlock fails the test instead of
hanging the suite. Programs are written into the test's directory; the
native ones are compiled with the cc on PATH (skipped without one).
"""
import fcntl
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import textwrap
import time

import harness
from harness import PYTHON, TempDirCase, load_snap

SANITIZED = bool(os.environ.get("LEAKDIFF_SANITIZED"))
# Generous: a sanitized recorder, a loaded CI machine.
TIMEOUT = 600 if SANITIZED else 300

# A module with many distinct allocation lines, so that a snapshot is large:
# N functions each keeping a list of M objects.
BIG_HEAP = textwrap.dedent("""\
    def big_heap(functions, objects):
        src = "\\n".join("def f%d():\\n    return [object() for _ in range(%d)]" % (i, objects)
                         for i in range(functions))
        ns = {}
        exec(compile(src, "generated_heap.py", "exec"), ns)
        return [ns["f%d" % i]() for i in range(functions)]
    """)


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))


_WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64, "riscv64": 64, "ppc64le": 4, "s390x": 4}


def blocked_in_pipe_write(pid):
    """True when pid sleeps in write(2) on a pipe. The programs here write
    nothing else big enough to block, so that is the agent's pipe, full
    because the recorder does not read it."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            wchan = f.read().strip()
        if "pipe_write" in wchan:
            return True
        if wchan not in ("", "0"):
            return False
        with open("/proc/%d/syscall" % pid) as f:
            fields = f.read().split()
        if fields[0] != str(_WRITE_SYSCALL.get(platform.machine(), -1)):
            return False
        fd = int(fields[1], 16)
        link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
        return link.startswith("pipe:") and fd > 2
    except (OSError, IndexError, ValueError):
        return False


class FaultCase(TempDirCase):
    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def tmp_files(self, directory=None):
        return [p for p in os.listdir(directory or self.tmp) if ".tmp." in p]

    def snaps(self, directory=None):
        return sorted(p for p in os.listdir(directory or self.tmp) if p.endswith(".snap"))

    def spawn(self, out, *cmd, opts=(), env=None, **kw):
        """Starts `leakdiff record` in a session of its own (so that all it
        started can be killed at the end), pipes on all three streams."""
        args = [harness.LEAKDIFF, "record", "-o", out] + list(opts) + ["--"] + [str(c) for c in cmd]
        p = subprocess.Popen(args, env=harness.program_env(env), cwd=self.tmp, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                             universal_newlines=True, errors="surrogateescape", **kw)
        self.addCleanup(self._reap, p)
        return p

    @staticmethod
    def _reap(p):
        """Kills what is left of a run: the recorder and whatever it started.
        The command has a process group of its own (no controlling terminal
        here), so everything in the session is killed, not one group."""
        for pid in session_members(p.pid) + [p.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            p.communicate(timeout=30)
        except Exception:
            pass

    def record(self, out, *cmd, opts=(), env=None, timeout=TIMEOUT):
        """Runs `leakdiff record` to the end; on timeout kills it and the
        target (a hung target must not outlive the test) and raises
        subprocess.TimeoutExpired."""
        p = self.spawn(out, *cmd, opts=opts, env=env)
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._reap(p)
            raise
        return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)

    def type_count(self, doc, name):
        return sum(t[1] for t in doc["types"] if doc["strings"][t[0]] == name)


# ------------------------------------------------------------ SIGKILL mid-stream

KILL_PROGRAM = BIG_HEAP + textwrap.dedent("""\
    import leakdiff, sys
    leakdiff.snapshot("one")
    keep = big_heap(3000, 100)   # 300,000 objects at 3,000 sites
    print("ready", flush=True)
    sys.stdin.readline()
    leakdiff.snapshot("big")
    print("not killed", flush=True)
    sys.stdin.readline()         # killed here at the latest
    """)


class KilledWhileStreaming(FaultCase):
    def check_outcome(self, p, out, err):
        self.assertEqual(p.returncode, 128 + signal.SIGKILL, err)
        self.assertIn("killed by signal 9", err)
        one = load_snap(self.path("run.1.snap"))
        self.assertEqual((one["meta"]["label"], one["meta"]["seq"]), ("one", 1))
        self.assertFalse(os.path.exists(self.path("run.snap")), err)
        self.assertEqual(self.tmp_files(), [])
        # whatever else was written is whole
        for name in self.snaps():
            load_snap(self.path(name))

    def test_sigkill_while_snapshot_is_sent(self):
        """The recorder is frozen (SIGSTOP) while the target sends its second,
        300 KB snapshot, so the target blocks half-way through the data; then
        the target is SIGKILLed and the recorder thawed: it must drop the
        cut snapshot with a warning and keep the first."""
        prog = self.write("big.py", KILL_PROGRAM)
        p = self.spawn("run.snap", PYTHON, prog)
        self.assertEqual(p.stdout.readline(), "ready\n")
        wait_for(lambda: os.path.exists(self.path("run.1.snap")), 60, "run.1.snap")
        target = load_snap(self.path("run.1.snap"))["meta"]["pid"]
        os.kill(p.pid, signal.SIGSTOP)
        try:
            p.stdin.write("\n")
            p.stdin.flush()
            wait_for(lambda: blocked_in_pipe_write(target), TIMEOUT,
                     "the target to block writing its snapshot")
            os.kill(target, signal.SIGKILL)
        finally:
            os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=TIMEOUT)
        self.check_outcome(p, out, err)
        self.assertNotIn("not killed", out)
        self.assertFalse(os.path.exists(self.path("run.2.snap")), err)
        self.assertRegex(err, r"snapshot 2 was dropped: cut off after \d+ bytes")

    def test_sigkill_at_any_moment(self):
        """The same without freezing anything: the target is killed at once
        (while the heap is walked), then, attempt after attempt, as soon as
        it is seen in write(2) on its pipe. Wherever the kill lands, the
        first snapshot stays whole, no partial or temporary file is left,
        and a second snapshot is either whole or dropped with "cut off
        after N bytes". Attempts go on (at most 12) until one kill has
        landed mid-stream, which the README promises is survived."""
        prog = self.write("big.py", KILL_PROGRAM)
        outcomes = []
        for attempt in range(12):
            for name in self.snaps():
                os.unlink(self.path(name))
            p = self.spawn("run.snap", PYTHON, prog)
            self.assertEqual(p.stdout.readline(), "ready\n")
            wait_for(lambda: os.path.exists(self.path("run.1.snap")), 60, "run.1.snap")
            target = load_snap(self.path("run.1.snap"))["meta"]["pid"]
            waiting = waiting_for_stdin(target)
            p.stdin.write("\n")
            p.stdin.flush()
            if attempt == 0:
                os.kill(target, signal.SIGKILL)
                os.close(waiting)
            else:
                kill_when_writing(target, waiting, TIMEOUT)
            out, err = p.communicate(timeout=TIMEOUT)
            with self.subTest(attempt=attempt):
                self.check_outcome(p, out, err)
                if os.path.exists(self.path("run.2.snap")):
                    self.assertEqual(load_snap(self.path("run.2.snap"))["meta"]["label"], "big")
                    self.assertNotIn("dropped", err)
                    outcomes.append("whole")
                elif "snapshot 2 was dropped" in err:
                    self.assertRegex(err, r"snapshot 2 was dropped: cut off after \d+ bytes")
                    outcomes.append("dropped")
                else:
                    outcomes.append("before")  # killed before it began to send
            if "dropped" in outcomes and attempt >= 2:
                break
        print("# kill outcomes: %s" % ", ".join(outcomes))
        self.assertIn("dropped", outcomes, "no kill landed while the snapshot was streamed")


_READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "riscv64": 63, "ppc64le": 3, "s390x": 3}


def current_syscall(fd):
    """(number, first argument) of the system call the process whose
    /proc/PID/syscall is open as fd sleeps in, or None when it runs."""
    fields = os.pread(fd, 256, 0).split()
    if len(fields) < 2 or not fields[0].lstrip(b"-").isdigit():
        return None
    return int(fields[0]), int(fields[1], 16)


def waiting_for_stdin(pid):
    """An open /proc/PID/syscall, once pid sleeps reading its stdin."""
    fd = os.open("/proc/%d/syscall" % pid, os.O_RDONLY)
    read = (_READ_SYSCALL.get(platform.machine(), -1), 0)
    wait_for(lambda: current_syscall(fd) == read, 60, "the target to wait on its stdin")
    return fd


def written_bytes(fd):
    """wchar from the /proc/PID/io open as fd: bytes the process has
    passed to write(2) and the like."""
    for line in os.pread(fd, 4096, 0).splitlines():
        if line.startswith(b"wchar:"):
            return int(line.split()[1])
    raise OSError("no wchar in /proc/PID/io")


def kill_when_writing(pid, fd, timeout):
    """With pid waiting on stdin (fd from waiting_for_stdin) and just sent
    a line: SIGKILLs it the moment it has written anything (the agent's
    first frame of the snapshot: the program writes nothing else until the
    snapshot is sent) or is seen blocked writing to a descriptor above 2,
    or once it waits on its stdin again (the snapshot went out whole), or
    at the timeout. Polls /proc as fast as it can."""
    read = (_READ_SYSCALL.get(platform.machine(), -1), 0)
    write = _WRITE_SYSCALL.get(platform.machine(), -1)
    io = None
    try:
        io = os.open("/proc/%d/io" % pid, os.O_RDONLY)
        before = written_bytes(io)
        deadline = time.time() + timeout
        left = False  # has it stopped reading stdin since the line was sent?
        while time.time() < deadline:
            now = current_syscall(fd)
            if now != read:
                left = True
            if now is not None and now[0] == write and now[1] > 2:
                break
            if written_bytes(io) != before:
                break
            if left and now == read:
                break
    except OSError:
        pass  # it is gone
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os.close(fd)
        if io is not None:
            os.close(io)


# ------------------------------------------------------------ full disk

DISK_PROGRAM = BIG_HEAP + textwrap.dedent("""\
    import leakdiff, sys
    leakdiff.snapshot("small")
    keep = big_heap(1500, 20)    # the at-exit snapshot is far larger
    print("done", flush=True)
    """)


class DiskFull(FaultCase):
    def setUp(self):
        super().setUp()
        # An earlier run's file at the output path: a failed write keeps it.
        self.old = os.path.join(harness.DATA, "before.snap")

    def prepare(self, directory):
        out = os.path.join(directory, "run.snap")
        shutil.copy(self.old, out)
        return out

    def check_disk_full(self, r, out, directory, message):
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("done", r.stdout)
        self.assertIn("leakdiff: %s: cannot write: %s" % (out, message), r.stderr)
        with open(out, "rb") as f, open(self.old, "rb") as g:
            self.assertEqual(f.read(), g.read(), "the old run.snap was changed")
        self.assertEqual(load_snap(os.path.join(directory, "run.1.snap"))["meta"]["label"], "small")
        self.assertEqual(self.tmp_files(directory), [])

    def limited_run(self, limit, ignore_sigxfsz):
        prog = self.write("disk.py", DISK_PROGRAM)
        out = self.prepare(self.tmp)

        def limit_files():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            if ignore_sigxfsz:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        # subprocess resets SIGXFSZ to its default before preexec_fn runs,
        # as a shell does for `ulimit -f`.
        p = subprocess.run([harness.LEAKDIFF, "record", "-o", out, "--", PYTHON, prog],
                           env=harness.program_env(), cwd=self.tmp, preexec_fn=limit_files, timeout=TIMEOUT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        return p, out

    def test_file_size_limit(self):
        """RLIMIT_FSIZE below the at-exit snapshot, SIGXFSZ ignored: write(2)
        fails with EFBIG."""
        r, out = self.limited_run(16384, ignore_sigxfsz=True)
        self.check_disk_full(r, out, self.tmp, "File too large")

    def test_file_size_limit_default_sigxfsz(self):
        """The same under `ulimit -f` as a shell sets it, SIGXFSZ at its
        default action (terminate): the recorder must not die of it."""
        r, out = self.limited_run(16384, ignore_sigxfsz=False)
        self.assertNotEqual(r.returncode, -signal.SIGXFSZ,
                            "the recorder was killed by SIGXFSZ; left behind: %s" % self.tmp_files())
        self.check_disk_full(r, out, self.tmp, "File too large")

    def test_full_tmpfs(self):
        """A real ENOSPC: a small tmpfs, filled up by the program after its
        first snapshot."""
        mnt = self.path("mnt")
        os.mkdir(mnt)
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if m.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: %s" % m.stdout.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        out = self.prepare(mnt)
        prog = self.write("fill.py", BIG_HEAP + textwrap.dedent("""\
            import leakdiff, os, sys, time
            mnt = sys.argv[1]
            leakdiff.snapshot("small")
            # wait for the recorder to store it before filling the disk
            while not os.path.exists(os.path.join(mnt, "run.1.snap")):
                time.sleep(0.01)
            fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while True:
                    os.write(fd, b"x" * 4096)
            except OSError:
                pass
            os.close(fd)
            keep = big_heap(1500, 20)
            print("done", flush=True)
            """))
        r = harness.run([harness.LEAKDIFF, "record", "-o", out, "--", PYTHON, prog, mnt],
                        cwd=self.tmp, timeout=TIMEOUT)
        self.check_disk_full(r, out, mnt, "No space left on device")


# ------------------------------------------------------------ interrupting the recorder

WAIT_PROGRAM = textwrap.dedent("""\
    import leakdiff, signal, sys, time
    MODE = sys.argv[1]
    class Kept: pass
    keep = [Kept() for _ in range(321)]
    if MODE == "term-exit":
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(4))
    if MODE == "hup-exit":
        signal.signal(signal.SIGHUP, lambda *a: sys.exit(0))
    leakdiff.snapshot("before")
    print("ready", flush=True)
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        if MODE == "int-caught":
            print("caught", flush=True)
            sys.exit(3)
        raise
    """)


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (which may hold
    spaces and parentheses): state, ppid, pgrp, session, ...; None when the
    process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def session_members(sid):
    """Pids of the processes whose session is `sid` (from /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = stat_fields(int(name))
            if fields and len(fields) > 3 and int(fields[3]) == sid:
                found.append(int(name))
    return found


def alive(pid):
    """True while `pid` exists and is not a zombie."""
    fields = stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def process_group(pid):
    return int(stat_fields(pid)[2])


class Interrupted(FaultCase):
    def interrupt(self, mode, sig, group=False):
        prog = self.write("wait.py", WAIT_PROGRAM)
        p = self.spawn("run.snap", PYTHON, prog, mode)
        self.assertEqual(p.stdout.readline(), "ready\n")
        wait_for(lambda: os.path.exists(self.path("run.1.snap")), 60, "run.1.snap")
        if group:
            os.killpg(p.pid, sig)   # the whole process group, as kill -INT -PGID does
        else:
            os.kill(p.pid, sig)     # the recorder alone; it forwards
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(load_snap(self.path("run.1.snap"))["meta"]["label"], "before")
        self.assertEqual(self.tmp_files(), [])
        return p.returncode, out, err

    def assert_exit_snapshot(self, err):
        self.assertTrue(os.path.exists(self.path("run.snap")), err)
        doc = load_snap(self.path("run.snap"))
        self.assertEqual(doc["meta"]["trigger"], "exit")
        self.assertEqual(self.type_count(doc, "__main__.Kept"), 321)

    def test_sigint_keyboard_interrupt(self):
        # KeyboardInterrupt unwinds, atexit runs (the snapshot), then Python
        # ends itself with SIGINT as a shell expects.
        rc, out, err = self.interrupt("plain", signal.SIGINT)
        self.assertEqual(rc, 128 + signal.SIGINT, err)
        self.assertIn("KeyboardInterrupt", err)
        self.assert_exit_snapshot(err)
        self.assertNotIn("no at-exit snapshot", err)

    def test_sigint_caught(self):
        rc, out, err = self.interrupt("int-caught", signal.SIGINT)
        self.assertEqual(rc, 3, err)
        self.assertIn("caught", out)
        self.assert_exit_snapshot(err)

    def test_sigterm_handled(self):
        rc, out, err = self.interrupt("term-exit", signal.SIGTERM)
        self.assertEqual(rc, 4, err)
        self.assert_exit_snapshot(err)

    def test_sigterm_default(self):
        # Python's default for SIGTERM is to die at once: no atexit.
        rc, out, err = self.interrupt("plain", signal.SIGTERM)
        self.assertEqual(rc, 128 + signal.SIGTERM, err)
        self.assertIn("killed by signal 15", err)
        self.assertFalse(os.path.exists(self.path("run.snap")))

    def test_sighup_handled(self):
        rc, out, err = self.interrupt("hup-exit", signal.SIGHUP)
        self.assertEqual(rc, 0, err)
        self.assert_exit_snapshot(err)

    def test_sigint_to_process_group(self):
        """kill -INT -PGID (a CI runner cancelling a job, a script's kill 0):
        the target gets the signal from the kernel and must not get a second
        one from the recorder, which interrupts its at-exit snapshot. Whether
        the second one lands there is a race, so tried three times."""
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                for name in self.snaps():
                    os.unlink(self.path(name))
                rc, out, err = self.interrupt("plain", signal.SIGINT, group=True)
                self.assertEqual(rc, 128 + signal.SIGINT, err)
                self.assert_exit_snapshot(err)

    def test_group_signals_arrive_once(self):
        """The same, seen from the target: it blocks the signal and collects
        every instance with sigtimedwait(), noting who sent it. Without a
        controlling terminal the target has a process group of its own, so
        the group kill reaches the recorder alone and the target gets
        exactly one copy, the recorder's. Two copies could merge into one
        pending signal, so three tries each."""
        prog = self.write("senders.py", textwrap.dedent("""\
            import leakdiff, os, signal, sys
            sig = int(sys.argv[1])
            signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
            leakdiff.snapshot("before")
            print("ready", flush=True)
            senders = []
            while True:
                info = signal.sigtimedwait({sig}, 1.0 if senders else 60)
                if info is None:
                    break
                senders.append(info.si_pid)
            print(" ".join(map(str, senders)), flush=True)
            """))
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            for attempt in range(3):
                with self.subTest(signal=sig, attempt=attempt):
                    for name in self.snaps():
                        os.unlink(self.path(name))
                    p = self.spawn("run.snap", PYTHON, prog, int(sig))
                    self.assertEqual(p.stdout.readline(), "ready\n")
                    wait_for(lambda: os.path.exists(self.path("run.1.snap")), 60, "run.1.snap")
                    os.killpg(p.pid, sig)
                    out, err = p.communicate(timeout=TIMEOUT)
                    self.assertEqual(p.returncode, 0, err)
                    senders = [int(x) for x in out.split()]
                    self.assertEqual(senders, [p.pid], "the target must get the signal once, "
                                     "forwarded by the recorder")
                    self.assert_exit_snapshot_written(err)

    def test_own_group_without_terminal_dies_with_recorder(self):
        """No controlling terminal: the command leads a process group of its
        own, and a recorder killed with SIGKILL takes it along (nothing is
        left running after a cancelled CI job)."""
        prog = self.write("wait.py", WAIT_PROGRAM)
        p = self.spawn("run.snap", PYTHON, prog, "plain")
        self.assertEqual(p.stdout.readline(), "ready\n")
        wait_for(lambda: os.path.exists(self.path("run.1.snap")), 60, "run.1.snap")
        target = load_snap(self.path("run.1.snap"))["meta"]["pid"]
        self.assertEqual(process_group(target), target)
        self.assertEqual(process_group(p.pid), p.pid)
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=TIMEOUT)
        wait_for(lambda: not alive(target), 60, "the target to die with the recorder")

    def test_terminal_keeps_the_shared_group(self):
        """At a terminal the command stays in the shell's job (the recorder's
        group) so that Ctrl-C and job control reach it from the kernel; the
        recorder does not forward the keyboard's SIGINT a second time."""
        import pty
        import termios
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)

        def take_terminal():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        prog = self.write("wait.py", WAIT_PROGRAM)
        args = [harness.LEAKDIFF, "record", "-o", "run.snap", "--", PYTHON, prog, "int-caught"]
        p = subprocess.Popen(args, env=harness.program_env(), cwd=self.tmp, stdin=slave, stdout=slave,
                             stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=take_terminal, universal_newlines=True)
        os.close(slave)
        self.addCleanup(self._reap, p)
        seen = b""
        while b"ready" not in seen:
            chunk = os.read(master, 4096)
            self.assertTrue(chunk, "the program never said ready")
            seen += chunk
        wait_for(lambda: os.path.exists(self.path("run.1.snap")), 60, "run.1.snap")
        target = load_snap(self.path("run.1.snap"))["meta"]["pid"]
        self.assertEqual(process_group(target), p.pid)
        os.write(master, b"\x03")            # Ctrl-C at the terminal
        err = p.communicate(timeout=TIMEOUT)[1]
        self.assertEqual(p.returncode, 3, err)  # caught once: sys.exit(3)
        self.assert_exit_snapshot_written(err)

    def assert_exit_snapshot_written(self, err):
        self.assertTrue(os.path.exists(self.path("run.snap")), err)
        self.assertEqual(load_snap(self.path("run.snap"))["meta"]["trigger"], "exit")


# ------------------------------------------------------------ descriptors closed and reused

CLOSE_PROGRAM = textwrap.dedent("""\
    import os, sys, leakdiff
    mode, outdir = sys.argv[1], sys.argv[2]
    # The agent's pipe is the one pipe besides the standard streams.
    mine = []
    for n in os.listdir("/proc/self/fd"):
        try:
            if int(n) > 2 and os.readlink("/proc/self/fd/" + n).startswith("pipe:"):
                mine.append(int(n))
        except OSError:
            pass    # the descriptor listdir used, closed since
    first = leakdiff.snapshot("before-close")
    os.closerange(3, 1024)
    r = w = None
    if mode == "pipe":
        # A pipe of the program's own under the agent's old number.
        r, w = os.pipe()
        for fd in mine:
            os.dup2(w, fd)
        os.set_blocking(r, False)
    # Files under the old number (mode "files") or right after it.
    files = [open(os.path.join(outdir, "f%02d.txt" % i), "w") for i in range(48)]
    reused = [f.fileno() for f in files]
    second = leakdiff.snapshot("after-close")
    for i, f in enumerate(files[1:], 1):
        f.write("line %d\\n" % i)
        f.close()
    files[0].write("kept open until exit\\n")
    files[0].flush()
    got = b""
    if r is not None:
        try:
            got = os.read(r, 65536)
        except BlockingIOError:
            pass
    print(first, second, leakdiff.recording(), bool(set(mine) & set(reused)) or mode == "pipe",
          len(got), flush=True)
    """)


class ClosedDescriptors(FaultCase):
    def run_close(self, mode):
        prog = self.write("close.py", CLOSE_PROGRAM)
        outdir = self.path("files")
        os.mkdir(outdir)
        r = self.record(self.path("run.snap"), PYTHON, prog, mode, outdir)
        # The program ran on, and nothing of the agent's went into its files.
        self.assertEqual(r.stdout, "1 None False True 0\n", r.stderr)
        with open(os.path.join(outdir, "f00.txt")) as f:
            self.assertEqual(f.read(), "kept open until exit\n")
        for i in range(1, 48):
            with open(os.path.join(outdir, "f%02d.txt" % i)) as f:
                self.assertEqual(f.read(), "line %d\n" % i)
        # The first snapshot was stored; after the close, nothing more.
        self.assertEqual(load_snap(self.path("run.1.snap"))["meta"]["label"], "before-close")
        self.assertEqual(self.snaps(), ["run.1.snap"])
        self.assertEqual(self.tmp_files(), [])
        # No at-exit snapshot: the recorder says so and fails the run.
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("without an at-exit snapshot: the agent's pipe was closed while the program ran",
                      r.stderr)
        print("# recorder said: %s" % r.stderr.strip().splitlines()[-1])

    def test_files_reuse_the_number(self):
        self.run_close("files")

    def test_own_pipe_at_the_number(self):
        self.run_close("pipe")


# ------------------------------------------------------------ threads and processes

THREADS_PROGRAM = textwrap.dedent("""\
    import leakdiff, sys, threading, time
    API = sys.argv[1] == "api"
    class Leaked:
        __slots__ = ("n", "payload")
        def __init__(self, n):
            self.n = n
            self.payload = [n] * 3
    keep = []
    keep_lock = threading.Lock()
    THREADS, PER = 6, 20000
    def work(t):
        for i in range(PER):
            o = Leaked(i)
            junk = {"i": i, "s": str(i)}
            if i % 10 == 0:
                with keep_lock:
                    keep.append(o)
    def snapper(stop, results):
        while not stop.is_set():
            results.append(leakdiff.snapshot("snapper"))
            time.sleep(0.02)
    stop = threading.Event()
    results = [] if API else [1]
    workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    snappers = [threading.Thread(target=snapper, args=(stop, results)) for _ in range(2 if API else 0)]
    for t in workers + snappers:
        t.start()
    while any(t.is_alive() for t in workers):
        if API:
            results.append(leakdiff.snapshot("main"))
        time.sleep(0.01)
    for t in workers:
        t.join()
    stop.set()
    for t in snappers:
        t.join()
    taken = [r for r in results if r is not None]
    print(len(keep), len(taken) > 0, len(set(taken)) == len(taken), flush=True)
    sys.exit(5)
    """)

MP_PROGRAM = textwrap.dedent("""\
    import multiprocessing as mp, os, sys, threading, time
    import leakdiff
    class Leaked:
        pass
    keep = [Leaked() for _ in range(1234)]

    def child(n):
        try:
            import leakdiff as ld
            state = (ld.snapshot("child"), ld.recording())
        except ImportError:
            state = (None, False)
        made = [Leaked() for _ in range(n)]
        return state + (len(made), sorted(k for k in os.environ if k.startswith("LEAKDIFF")))

    def snapper(stop):
        while not stop.is_set():
            leakdiff.snapshot("during-pool")
            time.sleep(0.005)

    if __name__ == "__main__":
        ctx = mp.get_context(sys.argv[1])
        stop = threading.Event()
        t = threading.Thread(target=snapper, args=(stop,))
        t.start()   # snapshots being taken while the pool forks
        try:
            with ctx.Pool(3) as pool:
                res = pool.map(child, [10, 20, 30, 40, 50, 60])
            p = ctx.Process(target=child, args=(5,))
            p.start()
            p.join()
        finally:
            stop.set()
            t.join()
        print(res, p.exitcode, flush=True)
        leakdiff.snapshot("after-pool")
        sys.exit(6)
    """)


class Concurrency(FaultCase):
    def test_api_snapshot_with_every_shorter_than_a_snapshot(self):
        """--every shorter than a snapshot takes, and one leakdiff.snapshot()
        call: the program must still get to run and finish."""
        prog = self.write("api.py", textwrap.dedent("""\
            import leakdiff, time
            leakdiff.snapshot("api")
            t = time.time()
            while time.time() - t < 2:
                time.sleep(0.01)
            print("finished", flush=True)
            """))
        try:
            r = self.record(self.path("run.snap"), PYTHON, prog, opts=["--every=50ms"], timeout=45)
        except subprocess.TimeoutExpired:
            self.fail("a 2-second program did not finish in 45 s under --every=50ms: %d snapshots "
                      "written meanwhile" % len(self.snaps()))
        self.assertEqual((r.returncode, r.stdout), (0, "finished\n"), r.stderr)
        # Every requested snapshot was written (README, Reliability): the
        # agent numbers each one it takes, so the files hold 1..N without a
        # gap, N-1 of them numbered and the at-exit one as run.snap; one is
        # the API's, the others the timer's; one "wrote" line per file and
        # nothing dropped. The timer's first request lands while the API
        # snapshot is taken; it must still be answered, and the timer go on
        # asking until the end: interval snapshots after the API one, the
        # last of them in the program's last second.
        names = self.snaps()
        n = len(names)
        self.assertEqual(sorted(names), sorted(["run.snap"] + ["run.%d.snap" % i for i in range(1, n)]))
        metas = [load_snap(self.path("run.%d.snap" % i))["meta"] for i in range(1, n)]
        self.assertEqual([m["seq"] for m in metas], list(range(1, n)))
        self.assertEqual(load_snap(self.path("run.snap"))["meta"]["seq"], n)
        self.assertEqual(sorted(m["trigger"] for m in metas), ["api"] + ["interval"] * (n - 2))
        self.assertEqual([m["label"] for m in metas if m["trigger"] == "api"], ["api"])
        self.assertEqual(r.stderr.count("leakdiff: wrote "), n, r.stderr)
        self.assertNotIn("dropped", r.stderr)
        self.assertEqual(self.tmp_files(), [])
        api = [m for m in metas if m["trigger"] == "api"][0]
        later = [m for m in metas if m["trigger"] == "interval" and m["seq"] > api["seq"]]
        self.assertTrue(later, r.stderr)
        end = load_snap(self.path("run.snap"))["meta"]["elapsed_ms"]
        self.assertGreater(max(m["elapsed_ms"] for m in later), end - 1000, r.stderr)

    def test_every_ticks_during_back_to_back_api_snapshots(self):
        """A program taking API snapshots back to back for two seconds:
        nearly every --every tick lands while one is being taken. Each must
        be queued and answered, so the timer goes on to the end; were one
        absorbed by the API snapshot, the recorder would wait for its answer
        for good and no interval snapshot would follow."""
        prog = self.write("loop.py", textwrap.dedent("""\
            import leakdiff, time
            t = time.time()
            n = 0
            while time.time() - t < 2:
                leakdiff.snapshot("api")
                n += 1
            print("finished", n > 1, flush=True)
            """))
        try:
            r = self.record(self.path("run.snap"), PYTHON, prog, opts=["--every=50ms"], timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("a 2-second program did not finish in 60 s under --every=50ms: %d snapshots "
                      "written meanwhile" % len(self.snaps()))
        self.assertEqual((r.returncode, r.stdout), (0, "finished True\n"), r.stderr)
        self.assertNotIn("dropped", r.stderr)
        n = len(self.snaps())
        metas = [load_snap(self.path("run.%d.snap" % i))["meta"] for i in range(1, n)]
        self.assertEqual([m["seq"] for m in metas], list(range(1, n)))
        interval = [m for m in metas if m["trigger"] == "interval"]
        # ticks every 50 ms plus a snapshot's time: several a second
        self.assertGreaterEqual(len(interval), 3, r.stderr)
        end = load_snap(self.path("run.snap"))["meta"]["elapsed_ms"]
        self.assertGreater(max(m["elapsed_ms"] for m in interval), end - 1000, r.stderr)

    def threads(self, api, every):
        """Six threads allocating; two more and the main thread calling
        leakdiff.snapshot() in a loop (api), the recorder's timer (every)."""
        prog = self.write("threads.py", THREADS_PROGRAM)
        opts = ["--every=%s" % every] if every else []
        try:
            r = self.record(self.path("run.snap"), PYTHON, prog, "api" if api else "-", opts=opts,
                            timeout=100)
        except subprocess.TimeoutExpired:
            self.fail("deadlock or livelock: no exit in 100 s, %d snapshots written meanwhile"
                      % len(self.snaps()))
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertEqual(r.stdout, "12000 True True\n")
        doc = load_snap(self.path("run.snap"))
        self.assertEqual(doc["meta"]["trigger"], "exit")
        self.assertEqual(self.type_count(doc, "__main__.Leaked"), 12000)
        numbered = [n for n in self.snaps() if n != "run.snap"]
        self.assertTrue(numbered, r.stderr)
        triggers = {load_snap(self.path(n))["meta"]["trigger"] for n in numbered}
        self.assertEqual(triggers, ({"api"} if api else set()) | ({"interval"} if every else set()))
        self.assertNotIn("dropped", r.stderr)
        self.assertEqual(self.tmp_files(), [])

    def test_threads_with_api(self):
        self.threads(api=True, every=None)

    def test_threads_with_timer(self):
        self.threads(api=False, every="100ms")

    def test_threads_with_api_and_timer(self):
        self.threads(api=True, every="100ms")

    def multiprocessing(self, method):
        prog = self.write("mp.py", MP_PROGRAM)
        r = self.record(self.path("run.snap"), PYTHON, prog, method)
        self.assertEqual(r.returncode, 6, r.stderr)
        want = [(None, False, n, []) for n in (10, 20, 30, 40, 50, 60)]
        self.assertEqual(r.stdout, "%r 0\n" % (want,))
        doc = load_snap(self.path("run.snap"))
        self.assertEqual(self.type_count(doc, "__main__.Leaked"), 1234)
        # Only the parent's snapshots: every file names the same process.
        pids = {load_snap(self.path(n))["meta"]["pid"] for n in self.snaps()}
        self.assertEqual(len(pids), 1, self.snaps())
        labels = {load_snap(self.path(n))["meta"]["label"] for n in self.snaps()}
        self.assertNotIn("child", labels)
        self.assertIn("after-pool", labels)
        self.assertNotIn("dropped", r.stderr)
        self.assertNotIn("corrupt", r.stderr)

    def test_multiprocessing_fork(self):
        self.multiprocessing("fork")

    def test_multiprocessing_spawn(self):
        self.multiprocessing("spawn")

    def test_multiprocessing_forkserver(self):
        self.multiprocessing("forkserver")


# ------------------------------------------------------------ native stress

STRESS_C = r"""
/* Stress for the native agent; see test_faults.py. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define PER 200000
#define KEEP_EVERY 1000
#define EXITERS 20
#define LIB_BLOCKS 50

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *kept[THREADS * (PER / KEEP_EVERY) + EXITERS + LIB_BLOCKS + 16];
static size_t nkept;
static volatile sig_atomic_t usr1;
static volatile int stop_signals;

static void on_usr1(int sig) { (void)sig; usr1++; }

static void keep(void *p)
{
	pthread_mutex_lock(&lock);
	kept[nkept++] = p;
	pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) static void *retain_block(size_t n)
{
	void *p = malloc(n); /* RETAIN */
	if (!p) abort();
	memset(p, 7, n);
	keep(p);
	return p;
}

__attribute__((noinline)) static void exiter_keep(void)
{
	void *p = malloc(24);
	if (!p) abort();
	keep(p);
}

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	void *slots[128] = { 0 };
	for (int i = 0; i < PER; i++) {
		unsigned k = (seed = seed * 1103515245u + 12345u) >> 8;
		void **s = &slots[k % 128];
		switch (k % 4) {
		case 0: free(*s); *s = malloc(k % 700 + 1); break;
		case 1: { void *p = realloc(*s, k % 3000 + 1); if (p) *s = p; break; }
		case 2: { void *p = realloc(*s, 0 + (k % 5)); if (p || (k % 5) == 0) *s = p; break; }
		default: free(*s); *s = calloc(k % 9 + 1, k % 50 + 1); break;
		}
		if (i % KEEP_EVERY == 0)
			retain_block(40);
	}
	for (int i = 0; i < 128; i++)
		free(slots[i]);
	return NULL;
}

static void *exiter(void *arg)
{
	(void)arg;
	for (int i = 0; i < 500; i++)
		free(malloc((size_t)i + 1));
	exiter_keep();
	pthread_exit(NULL);
}

static void *signaller(void *arg)
{
	(void)arg;
	while (!stop_signals) {
		kill(getpid(), SIGUSR1);
		usleep(200);
	}
	return NULL;
}

__attribute__((noinline)) static int call_library(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return -1; }
	void *(*lib_alloc)(size_t) = (void *(*)(size_t))dlsym(h, "lib_alloc");
	if (!lib_alloc) return -1;
	for (int i = 0; i < LIB_BLOCKS; i++)
		keep(lib_alloc(16));
	return dlclose(h);
}

int main(int argc, char **argv)
{
	if (argc < 2) return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	pthread_t t[THREADS], sig;
	pthread_create(&sig, NULL, signaller, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < EXITERS; i++) {
		pthread_t e;
		pthread_create(&e, NULL, exiter, NULL);
		pthread_join(e, NULL);
	}
	pid_t child = fork();
	if (child == 0) {
		/* allocates, leaks and exits normally: its agent must stay silent */
		for (int i = 0; i < 10000; i++)
			free(malloc(100));
		void *leak = malloc(1000);
		if (!leak)
			abort();
		exit(9);
	}
	int st = 0;
	if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 9)
		return 20;
	if (call_library(argv[1]) != 0)
		return 21;
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	stop_signals = 1;
	pthread_join(sig, NULL);
	printf("kept %zu, signals seen %s\n", nkept, usr1 > 0 ? "yes" : "no");
	return 3;
}
"""

LIB_C = r"""
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) void *lib_alloc(size_t n)
{
	void *p = malloc(n);
	if (p) memset(p, 1, n);
	return p;
}
"""


class NativeStress(FaultCase):
    def setUp(self):
        super().setUp()
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            self.skipTest("no C compiler on PATH")
        with open(self.path("stress.c"), "w") as f:
            f.write(STRESS_C)
        with open(self.path("liballoc.c"), "w") as f:
            f.write(LIB_C)
        self.prog, self.lib = self.path("stress"), self.path("liballoc.so")
        for cmd in ([cc, "-g", "-O1", "-fPIC", "-shared", "-o", self.lib, self.path("liballoc.c")],
                    [cc, "-g", "-O1", "-pthread", "-o", self.prog, self.path("stress.c"), "-ldl"]):
            c = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=120)
            self.assertEqual(c.returncode, 0, c.stdout)

    def sites_with(self, doc, function, position=0):
        """Blocks and bytes of the sites whose frame at position (0 is the
        innermost) is in function."""
        count = size = 0
        for c, b, frames in doc["sites"]:
            names = [doc["strings"][doc["frames"][f][2]] for f in frames]
            if len(names) > position and names[position] == function:
                count += c
                size += b
        return count, size

    def test_native_stress(self):
        plain = harness.run([self.prog, self.lib], timeout=TIMEOUT)
        self.assertEqual(plain.returncode, 3, plain.stderr)
        # A few runs: each is short, and races need chances.
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                for name in self.snaps():
                    os.unlink(self.path(name))
                self.stress_run(plain)

    def stress_run(self, plain):
        try:
            r = self.record(self.path("run.snap"), self.prog, self.lib, opts=["--every=10ms"])
        except subprocess.TimeoutExpired:
            self.fail("deadlock: no exit in %d s" % TIMEOUT)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stdout, plain.stdout)
        self.assertEqual(r.stdout, "kept %d, signals seen yes\n" % (8 * 200 + 20 + 50))
        self.assertNotIn("dropped", r.stderr)
        self.assertNotIn("invalid", r.stderr)
        doc = load_snap(self.path("run.snap"))
        self.assertEqual(doc["meta"]["runtime"], "native")
        self.assertEqual(self.sites_with(doc, "retain_block"), (8 * 200, 8 * 200 * 40))
        self.assertEqual(self.sites_with(doc, "exiter_keep"), (20, 20 * 24))
        # Allocated in a library unloaded since: its own frame cannot be
        # named any more, its caller's can.
        self.assertEqual(self.sites_with(doc, "call_library", position=1), (50, 50 * 16))
        # The forked child's leak (malloc called from main) is not the parent's.
        self.assertEqual(self.sites_with(doc, "main"), (0, 0))
        for n in self.snaps():
            load_snap(self.path(n))
        self.assertEqual(self.tmp_files(), [])
        print("# %d snapshots during the run" % (len(self.snaps()) - 1))


DISPOSITIONS_C = r"""
/* Prints the signals this program starts with ignored or blocked. */
#include <signal.h>
#include <stdio.h>
int main(void)
{
	sigset_t blocked;
	sigprocmask(SIG_BLOCK, NULL, &blocked);
	printf("ignored:");
	for (int s = 1; s < 32; s++) {
		struct sigaction sa;
		if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			printf(" %d", s);
	}
	printf("\nblocked:");
	for (int s = 1; s < 32; s++)
		if (sigismember(&blocked, s) == 1)
			printf(" %d", s);
	printf("\n");
	return 0;
}
"""


# ------------------------------------------------------------ hostile names

# A program whose file name, class name, label and arguments carry terminal
# escapes (colour, title setting, screen clearing), a bell, a C1 CSI and a
# bidi override. Escapes the program allocates from are real frames of the
# recorded stack, not made-up fixtures.
EVIL = "\x1b[31mred\x1b]0;owned\x07\x9b2J\u202eevil"
HOSTILE_PROGRAM = textwrap.dedent("""\
    import leakdiff, sys
    Evil = type(sys.argv[1], (), {})
    kept = []
    def grow(n):
        kept.extend(Evil() for _ in range(n))
    grow(100)
    leakdiff.snapshot("before " + sys.argv[1])
    grow(400)
    """)
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


class HostileNames(FaultCase):
    def test_escapes_never_reach_reports_raw(self):
        prog = self.write("prog" + EVIL + ".py", HOSTILE_PROGRAM)
        r = self.record("run.snap", PYTHON, prog, EVIL)
        self.assertEqual(r.returncode, 0, r.stderr)
        for ch in RAW:
            self.assertNotIn(ch, r.stderr, "raw %r in the recorder's messages" % ch)
        before, after = self.path("run.1.snap"), self.path("run.snap")
        doc = load_snap(before)
        # The snapshot keeps the names as they are (escaping is for display).
        self.assertEqual(doc["meta"]["label"], "before " + EVIL)
        self.assertEqual(self.type_count(load_snap(after), "__main__." + EVIL), 500)
        for args in (("diff", before, after), ("diff", "-v", before, after),
                     ("diff", "--format=markdown", before, after), ("show", before),
                     ("show", "-v", after)):
            with self.subTest(args=args[:-1]):
                out = harness.leakdiff(*args)
                self.assertEqual(out.returncode, 0, out.stderr)
                for ch in RAW:
                    self.assertNotIn(ch, out.stdout, "raw %r in %s" % (ch, " ".join(args[:2])))
                    self.assertNotIn(ch, out.stderr)
                # What was an escape shows as its visible spelling.
                self.assertIn("\\x1b", out.stdout)
        # JSON carries the exact names, escaped by JSON itself.
        out = harness.leakdiff("diff", "--format=json", before, after)
        self.assertEqual(out.returncode, 0, out.stderr)
        for ch in RAW:
            self.assertNotIn(ch, out.stdout)
        import json
        d = json.loads(out.stdout)
        self.assertEqual(d["types"][0]["name"], "__main__." + EVIL)
        self.assertEqual(d["types"][0]["count_delta"], 400)
        self.assertTrue(any(EVIL in f["file"] for s in d["sites"] for f in s["frames"]))
        # The HTML page carries them in its JSON data block, escaped there, never raw.
        for args in (("diff", "--format=html", before, after), ("show", "--format=html", after)):
            with self.subTest(args=args[:2]):
                out = harness.leakdiff(*args)
                self.assertEqual(out.returncode, 0, out.stderr)
                for ch in RAW:
                    self.assertNotIn(ch, out.stdout)
                block = re.search(r'<script type="application/json" id="leakdiff-data">(.*?)</script>',
                                  out.stdout, re.S).group(1)
                page = json.loads(block)
                if args[0] == "diff":
                    self.assertEqual(page["types"][0]["name"], "__main__." + EVIL)
                self.assertTrue(any(EVIL in r[2] for r in page["flame"]["nodes"]))


class Dispositions(FaultCase):
    def test_target_starts_with_default_signals(self):
        """The recorder ignores SIGPIPE for itself; the program it runs must
        not inherit that (nor anything else): a native program whose output
        pipe closes should die of SIGPIPE as it does without leakdiff, not
        print EPIPE errors."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            self.skipTest("no C compiler on PATH")
        src = self.write("disp.c", DISPOSITIONS_C)
        prog = self.path("disp")
        c = subprocess.run([cc, "-o", prog, src], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=120)
        self.assertEqual(c.returncode, 0, c.stdout)
        plain = harness.run([prog])     # subprocess restores SIGPIPE and SIGXFSZ
        # What the test runner was started with (nohup ignores SIGHUP, a
        # background job SIGINT and SIGQUIT) reaches both runs alike; the
        # two the recorder ignores for itself must not be ignored here.
        ignored = plain.stdout.splitlines()[0].split()[1:]
        self.assertNotIn(str(int(signal.SIGPIPE)), ignored, plain.stdout)
        self.assertNotIn(str(int(signal.SIGXFSZ)), ignored, plain.stdout)
        r = self.record(self.path("d.snap"), prog)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, plain.stdout, "the target inherited the recorder's signal settings")


if __name__ == "__main__":
    harness.main()
