#!/usr/bin/env python3
"""The native agent attached to a running process (libleakdiff.so,
ld_attach_start and ld_attach_stop of leakdiff-protocol(7), ATTACHING).

prog_attach.c is a multi-threaded service started without leakdiff; it
attaches the agent to itself as the recorder's debugger would, with FIFOs
that this test makes as the recorder does (a private directory, mode 0600)
and reads as the recorder would: the events FIFO opened before attaching,
the request FIFO held open read-write. The tests check exact counts of the
blocks leaked after attaching in the raw documents of the stream, that
blocks from before attaching are neither counted nor a problem when freed,
that the GOT entries are rewritten (also in a module loaded later) and put
back on detach (by ld_attach_stop, by the end of the request FIFO, or by a
recorder that went away), that a hook called after detaching passes through, that a second attach is refused while attached
and works after detaching, that a fork()ed child stays off the stream, and
once with gdb driving the process as `leakdiff record --pid` does."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import TempDirCase  # noqa: E402

LIB = os.environ.get("NATIVE_ATTACH_LIB")
PROG = os.environ.get("NATIVE_PROG_ATTACH")
PLUGIN = os.environ.get("NATIVE_ATTACH_PLUGIN")
PLUGIN_CXX = os.environ.get("NATIVE_ATTACH_PLUGIN_CXX")
OWNALLOC = os.environ.get("NATIVE_ATTACH_OWNALLOC")
EBUSY, ENOENT = 16, 2


def split_frames(data):
    """The whole frames at the start of data as (tag, payload bytes)."""
    out, i = [], 0
    while True:
        nl = data.find(b"\n", i)
        if nl < 0:
            return out
        tag, n = data[i:nl].split(b" ")
        end = nl + 1 + int(n)
        if len(data) < end + 1:
            return out
        out.append((tag.decode(), data[nl + 1:end]))
        i = end + 1


class Recorder:
    """The recorder's side of an attachment: the FIFOs, a thread copying
    the stream, and the settings string for ld_attach_start."""

    def __init__(self, tmp, name="fifos"):
        self.dir = os.path.join(tmp, name)
        os.mkdir(self.dir, 0o700)
        self.events_path = os.path.join(self.dir, "events")
        self.requests_path = os.path.join(self.dir, "requests")
        os.mkfifo(self.events_path, 0o600)
        os.mkfifo(self.requests_path, 0o600)
        self.events = os.open(self.events_path, os.O_RDONLY | os.O_NONBLOCK)
        self.requests = os.open(self.requests_path, os.O_RDWR)
        self.data = b""
        self.eof = False
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def settings(self, extra=""):
        return "out=%s,in=%s%s" % (self.events_path, self.requests_path, extra)

    def _read(self):
        import select
        while True:
            try:
                r, _, _ = select.select([self.events], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                chunk = os.read(self.events, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return
            with self.lock:
                if not chunk:
                    # EOF only counts once a writer was there (the agent's hello).
                    if self.data:
                        self.eof = True
                        return
                    time.sleep(0.02)
                    continue
                self.data += chunk

    def frames(self):
        with self.lock:
            return split_frames(self.data)

    def wait(self, pred, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            time.sleep(0.02)
        raise AssertionError("timed out waiting for %s; stream so far: %r" % (what, self.data[:2000]))

    def hello(self):
        f = self.wait(lambda: [p for t, p in self.frames() if t == "hello"], "the hello")
        return json.loads(f[0])

    def snapshot(self):
        """Asks for a snapshot and returns its raw document."""
        before = len([1 for t, _ in self.frames() if t == "end"])
        os.write(self.requests, b"snapshot signal\n")
        self.wait(lambda: len([1 for t, _ in self.frames() if t == "end"]) > before, "a snapshot")
        return self.documents()[-1]

    def documents(self):
        docs, cur = [], None
        for t, p in self.frames():
            if t == "begin":
                cur = []
            elif t == "data" and cur is not None:
                cur.append(p)
            elif t == "end" and cur is not None:
                docs.append(json.loads(b"".join(cur)))
                cur = None
        return docs

    def close_requests(self):
        if self.requests >= 0:
            os.close(self.requests)
            self.requests = -1

    def close_events(self):
        if self.events >= 0:
            fd, self.events = self.events, -1
            os.close(fd)

    def close(self):
        self.close_requests()
        self.close_events()


def blocks_of_size(doc, size):
    """Live blocks in the document's sites whose blocks are all of size bytes."""
    return sum(c for c, b, *_ in doc["sites"] if c and b == c * size)


class Prog:
    """prog_attach.c, driven line by line."""

    def __init__(self, *extra):
        self.p = subprocess.Popen([PROG, LIB] + list(extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  universal_newlines=True, env=harness.program_env())
        line = self.p.stdout.readline()
        assert line.startswith("ready"), line
        self.pid = self.p.pid

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def attach(self, rec, extra=""):
        r = self.ask("attach " + rec.settings(extra))
        return int(r.split()[1])

    def finish(self):
        self.p.stdin.write("exit\n")
        self.p.stdin.close()
        return self.p.wait(timeout=30)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@unittest.skipUnless(LIB and PROG, "NATIVE_ATTACH_LIB and NATIVE_PROG_ATTACH are set by meson")
class Attach(TempDirCase):
    def setUp(self):
        super().setUp()
        self.progs, self.recs = [], []

    def tearDown(self):
        for p in self.progs:
            p.kill()
        for r in self.recs:
            r.close()
        super().tearDown()

    def prog(self, *extra):
        p = Prog(*extra)
        self.progs.append(p)
        return p

    def recorder(self, name="fifos"):
        r = Recorder(self.tmp, name)
        self.recs.append(r)
        return r

    def test_counts_what_leaks_after_attaching_and_detaches_cleanly(self):
        p = self.prog()
        self.assertEqual(p.ask("pre 50 1111"), "ok")
        self.assertEqual(p.ask("got"), "got libc none")
        rec = self.recorder()
        self.assertEqual(p.attach(rec, ",depth=8"), 0)
        hello = rec.hello()
        self.assertEqual(hello["runtime"], "native")
        self.assertIs(hello["attached"], True)
        self.assertIs(hello["requests"], True)
        self.assertEqual(hello["pid"], p.pid)
        self.assertEqual(hello["depth"], 8)
        self.assertEqual(p.ask("got"), "got agent none")
        self.assertEqual(p.ask("leak 30 2222"), "ok")
        # Blocks from before attaching: freed without harm and never counted;
        # reallocated, the new block is counted where it was resized.
        self.assertEqual(p.ask("realloc_pre 10 3333"), "ok")
        self.assertEqual(p.ask("free_pre"), "ok")
        doc = rec.snapshot()
        self.assertEqual(doc["format"], "leakdiff-native-raw")
        self.assertEqual(blocks_of_size(doc, 2222), 30)
        self.assertEqual(blocks_of_size(doc, 1111), 0)
        self.assertEqual(blocks_of_size(doc, 3333), 0)  # freed again by free_pre
        self.assertTrue(all(len(s[2]) <= 8 for s in doc["sites"]), doc["sites"])
        self.assertEqual(doc["meta"]["pid"], p.pid)
        self.assertEqual(p.ask("leak 5 2222"), "ok")
        self.assertEqual(blocks_of_size(rec.snapshot(), 2222), 35)
        self.assertEqual(p.ask("stop"), "stop 0")
        # Detached: the GOT is back, the agent closed its end of the stream
        # and nothing more arrives.
        self.assertEqual(p.ask("got"), "got libc none")
        rec.wait(lambda: rec.eof, "the end of the stream")
        n = len(rec.frames())
        self.assertEqual(p.ask("leak 20 2222"), "ok")
        # Blocks the agent recorded, freed after it forgot them.
        self.assertEqual(p.ask("free_kept"), "ok")
        self.assertEqual(p.ask("stop"), "stop -%d" % ENOENT)
        self.assertEqual(len(rec.frames()), n)
        self.assertEqual(p.finish(), 0)

    def test_second_attach_is_refused_and_attaching_again_starts_afresh(self):
        p = self.prog()
        rec = self.recorder("one")
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        other = self.recorder("two")
        self.assertEqual(p.attach(other), -EBUSY)
        self.assertEqual(p.ask("leak 3 5555"), "ok")
        self.assertEqual(blocks_of_size(rec.snapshot(), 5555), 3)
        self.assertEqual(p.ask("stop"), "stop 0")
        # The refused attempt opened nothing for good: its FIFO sees no writer.
        self.assertEqual(other.frames(), [])
        again = self.recorder("three")
        self.assertEqual(p.attach(again), 0)
        self.assertIs(again.hello()["attached"], True)
        self.assertEqual(p.ask("leak 4 5555"), "ok")
        doc = again.snapshot()
        self.assertEqual(blocks_of_size(doc, 5555), 4)
        self.assertEqual(doc["meta"]["seq"], 1)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.ask("got"), "got libc none")
        self.assertEqual(p.finish(), 0)

    def test_end_of_the_request_fifo_detaches(self):
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("leak 7 2222"), "ok")
        self.assertEqual(blocks_of_size(rec.snapshot(), 2222), 7)
        rec.close_requests()
        rec.wait(lambda: rec.eof, "the agent to close the stream")
        self.assertEqual(p.ask("got"), "got libc none")
        self.assertEqual(p.ask("leak 7 2222"), "ok")
        self.assertEqual(p.ask("stop"), "stop -%d" % ENOENT)
        self.assertEqual(p.finish(), 0)

    def test_a_hook_called_after_detaching_passes_through(self):
        # A thread that loaded a GOT entry just before the agent put it back
        # calls the hook after detaching: its blocks, and the frees of blocks
        # the agent had recorded, go to the C library and count nowhere, nor
        # do blocks allocated while detached once the agent attaches again.
        p = self.prog()
        rec = self.recorder("one")
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("got"), "got agent none")
        self.assertEqual(p.ask("leak 5 2222"), "ok")
        self.assertEqual(blocks_of_size(rec.snapshot(), 2222), 5)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.ask("kleak 6 2222"), "ok")
        self.assertEqual(p.ask("kfree_kept"), "ok")
        self.assertEqual(p.ask("leak 4 2222"), "ok")
        again = self.recorder("two")
        self.assertEqual(p.attach(again), 0)
        again.hello()
        self.assertEqual(p.ask("leak 3 2222"), "ok")
        self.assertEqual(blocks_of_size(again.snapshot(), 2222), 3)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.ask("got"), "got libc none")
        self.assertEqual(p.finish(), 0)

    def test_a_recorder_that_went_away_is_noticed(self):
        # A SIGKILLed recorder closes both ends; the stream's alone is enough.
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("leak 3 2222"), "ok")
        rec.close_events()
        deadline = time.monotonic() + 5
        while p.ask("got") != "got libc none":
            self.assertLess(time.monotonic(), deadline, "the GOT was not put back")
            time.sleep(0.05)
        self.assertEqual(p.ask("leak 3 2222"), "ok")
        self.assertEqual(p.finish(), 0)

    def test_exiting_just_after_the_recorder_went_away(self):
        # The at-exit snapshot may reach the broken stream before the
        # helper thread notices it: the write fails with EPIPE, and the
        # process is not killed by SIGPIPE.
        for i in range(3):
            p = self.prog()
            rec = self.recorder("gone%d" % i)
            self.assertEqual(p.attach(rec), 0)
            rec.hello()
            self.assertEqual(p.ask("leak 50 2222"), "ok")
            rec.close_events()
            self.assertEqual(p.finish(), 0)

    @unittest.skipUnless(PLUGIN, "NATIVE_ATTACH_PLUGIN is set by meson")
    def test_a_module_loaded_after_attaching_is_patched_and_restored(self):
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("plugin %s 9 4444" % PLUGIN), "ok")
        self.assertEqual(p.ask("got"), "got agent agent")
        self.assertEqual(blocks_of_size(rec.snapshot(), 4444), 9)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.ask("got"), "got libc libc")
        self.assertEqual(p.finish(), 0)

    @unittest.skipUnless(PLUGIN_CXX, "NATIVE_ATTACH_PLUGIN_CXX is set by meson when C++ builds")
    def test_operator_new_of_a_cxx_module_loaded_later_is_counted_once(self):
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("plugin %s 12 4321" % PLUGIN_CXX), "ok")
        self.assertEqual(p.ask("got"), "got agent agent")
        self.assertEqual(blocks_of_size(rec.snapshot(), 4321), 12)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.ask("got"), "got libc libc")
        self.assertEqual(p.finish(), 0)

    @unittest.skipUnless(OWNALLOC, "NATIVE_ATTACH_OWNALLOC is set by meson")
    def test_a_module_with_an_allocator_of_its_own_keeps_it(self):
        # Loaded before and after attaching, its entries bound lazily or
        # not yet: the plugin aborts if a block crosses between the heaps.
        p = self.prog()
        self.assertEqual(p.ask("deepbind %s 0 0" % OWNALLOC), "ok")
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("pleak 7 3456"), "ok")
        self.assertEqual(p.ask("deepbind %s 0 0" % OWNALLOC), "ok")
        time.sleep(0.3)  # past the helper's next look at new modules
        self.assertEqual(p.ask("pleak 7 3456"), "ok")
        self.assertEqual(blocks_of_size(rec.snapshot(), 3456), 0)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.ask("pleak 7 3456"), "ok")
        self.assertEqual(p.finish(), 0)

    @unittest.skipUnless(PLUGIN, "NATIVE_ATTACH_PLUGIN is set by meson")
    def test_a_module_of_another_namespace_keeps_its_own_allocator(self):
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("dlmopen %s 0 0" % PLUGIN), "ok")
        time.sleep(0.3)  # past the helper's next look at new modules
        self.assertEqual(p.ask("got"), "got agent libc")
        self.assertEqual(p.ask("pleak 5 4444"), "ok")
        self.assertEqual(blocks_of_size(rec.snapshot(), 4444), 0)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.finish(), 0)

    def test_a_forked_child_stays_off_the_stream(self):
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("fork"), "fork 0")
        self.assertEqual(p.ask("leak 2 2222"), "ok")
        doc = rec.snapshot()
        self.assertEqual(blocks_of_size(doc, 2222), 2)
        self.assertEqual(blocks_of_size(doc, 777), 0)
        self.assertEqual([t for t, _ in rec.frames() if t != "log"], ["hello", "begin", "data", "end"])
        rec.close()
        self.assertEqual(p.finish(), 0)

    def test_fifos_that_are_not_private_are_refused(self):
        p = self.prog()
        rec = self.recorder()
        os.chmod(rec.events_path, 0o644)
        self.assertEqual(p.attach(rec), -1)  # EPERM
        os.chmod(rec.events_path, 0o600)
        self.assertEqual(p.ask("attach out=%s,in=%s" % (rec.events_path, self.tmp)), "attach -%d" % 22)
        self.assertEqual(p.ask("got"), "got libc none")
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        rec.close()
        self.assertEqual(p.finish(), 0)

    def test_sample_and_peak_settings_are_honoured(self):
        p = self.prog()
        rec = self.recorder("sampled")
        self.assertEqual(p.attach(rec, ",sample=65536,bogus=1"), 0)
        hello = rec.hello()
        self.assertEqual(hello["sample"], 65536)
        self.assertNotIn("peak", hello)
        logs = rec.wait(lambda: [json.loads(pl)["message"] for t, pl in rec.frames() if t == "log"], "a log")
        self.assertEqual(logs, ["bogus is not a setting of the agent; it is ignored"])
        self.assertEqual(rec.snapshot()["meta"]["sample"], 65536)
        self.assertEqual(p.ask("stop"), "stop 0")
        rec = self.recorder("peak")
        self.assertEqual(p.attach(rec, ",peak=1"), 0)
        hello = rec.hello()
        self.assertIs(hello["peak"], True)
        self.assertNotIn("sample", hello)
        # New high-water marks, each followed by a free of the churning
        # threads: peak snapshots, taken while the leak grows.
        self.assertEqual(p.ask("leak 100 2222"), "ok")
        rec.wait(lambda: [1 for d in rec.documents() if d["meta"]["trigger"] == "peak"], "a peak snapshot")
        counts = [blocks_of_size(d, 2222) for d in rec.documents() if d["meta"]["trigger"] == "peak"]
        self.assertEqual(counts, sorted(counts))
        self.assertTrue(0 < counts[0] and counts[-1] <= 100, counts)
        self.assertEqual(p.ask("stop"), "stop 0")
        self.assertEqual(p.finish(), 0)

    def test_the_process_exiting_while_attached_sends_its_last_snapshot(self):
        p = self.prog()
        rec = self.recorder()
        self.assertEqual(p.attach(rec), 0)
        rec.hello()
        self.assertEqual(p.ask("leak 6 2222"), "ok")
        self.assertEqual(p.finish(), 0)
        rec.wait(lambda: rec.eof, "the end of the stream")
        docs = rec.documents()
        self.assertEqual(len(docs), 1)
        self.assertEqual(docs[0]["meta"]["trigger"], "exit")
        self.assertEqual(blocks_of_size(docs[0], 2222), 6)


def gdb_cannot_call(gdb):
    """What gdb says when it cannot call a function in a process of ours
    (a throwaway one: on some kernels, seen on Firecracker VMs, gdb fails to
    write the registers' extended state and the process is left broken);
    None when it can."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        r = subprocess.run([gdb, "-p", str(victim.pid), "-batch", "-nx", "-ex", "call (int)getpid()"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=120)
        return None if "= %d" % victim.pid in r.stdout else r.stdout
    finally:
        victim.kill()
        victim.wait()


@unittest.skipUnless(LIB and PROG, "NATIVE_ATTACH_LIB and NATIVE_PROG_ATTACH are set by meson")
class Gdb(TempDirCase):
    def test_gdb_batch_mode_attaches_and_the_service_carries_on(self):
        gdb = shutil.which("gdb")
        if not gdb:
            self.skipTest("gdb is not installed (Debian package gdb)")
        broken = gdb_cannot_call(gdb)
        if broken:
            self.skipTest("gdb cannot call functions in a process here:\n" + broken)
        p = Prog("--allow-ptrace")
        rec = Recorder(self.tmp)
        try:
            self.assertEqual(p.ask("leak 4 2222"), "ok")
            r = subprocess.run([gdb, "-p", str(p.pid), "-batch", "-nx",
                                "-ex", 'call (void*)dlopen("%s", 2)' % LIB,
                                "-ex", 'call (int)ld_attach_start("%s")' % rec.settings()],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=120)
            if "ptrace: Operation not permitted" in r.stdout:
                self.skipTest("ptrace is not permitted here:\n" + r.stdout)

            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn("= 0", r.stdout.strip().splitlines()[-1], r.stdout)
            self.assertIs(rec.hello()["attached"], True)
            self.assertEqual(p.ask("leak 8 6666"), "ok")
            doc = rec.snapshot()
            self.assertEqual(blocks_of_size(doc, 6666), 8)
            self.assertEqual(blocks_of_size(doc, 2222), 0)
            rec.close()
            deadline = time.monotonic() + 5
            while p.ask("got") != "got libc none":
                self.assertLess(time.monotonic(), deadline, "the GOT was not put back")
                time.sleep(0.05)
            # Neither stopped nor traced any more, and still answering.
            with open("/proc/%d/status" % p.pid) as f:
                status = f.read()
            self.assertIn("TracerPid:\t0\n", status)
            self.assertEqual(p.ask("leak 1 2222"), "ok")
            p.p.send_signal(signal.SIGTERM)
            self.assertEqual(p.p.wait(timeout=30), 0)
        finally:
            p.kill()
            rec.close()


if __name__ == "__main__":
    harness.main()
