"""End-to-end tests of the native agent (libleakdiff-preload.so).

Each test runs one of the programs built next to this file under the agent
through the real `leakdiff record` and reads what it leaves: the .snap
files it writes (gzip JSON, leakdiff-snapshot(5)), its messages on stderr,
and, through its hidden --tee-stream option, a copy of every byte the agent
sent down the pipe. The tests check exact counts at the allocating line,
names, files, the pipe protocol itself and that the program behaves as it
would without the agent. Meson passes the paths in NATIVE_* and LEAKDIFF.
"""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import zlib
from collections import namedtuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (the TAP runner shared with the e2e tests)

HERE = os.path.dirname(os.path.abspath(__file__))
LEAKDIFF = harness.LEAKDIFF
PRELOAD = os.environ.get("NATIVE_PRELOAD")
PROG_STATIC = os.environ.get("NATIVE_PROG_STATIC")
PROG_THREADS = os.environ.get("NATIVE_PROG_THREADS")
PROG_CXX = os.environ.get("NATIVE_PROG_CXX")
PROG_SEMANTICS = os.environ.get("NATIVE_PROG_SEMANTICS")
PROG_STACKS = os.environ.get("NATIVE_PROG_STACKS")
PROG_STACKS_FP = os.environ.get("NATIVE_PROG_STACKS_FP")

# What one recording left: the recorder's status, its events (below), the
# raw pipe stream, its stderr and the program's stdout.
Run = namedtuple("Run", "rc events stream err out")


def record_cmd(tmp, args, depth=None, extra=()):
    """The `leakdiff record` command line for args, writing tmp/run.snap
    (and run.N.snap) and the raw stream to tmp/stream.raw."""
    cmd = [LEAKDIFF, "record", "-o", os.path.join(tmp, "run.snap"),
           "--tee-stream", os.path.join(tmp, "stream.raw")]
    if depth is not None:
        cmd.append("--depth=%d" % depth)
    return cmd + list(extra) + ["--"] + list(args)


def record(tmp, args, env=None, depth=32, timeout=120, stdin=None, extra=()):
    """Runs args under the agent through `leakdiff record`."""
    p = subprocess.run(record_cmd(tmp, args, depth, extra), env=harness.program_env(env), cwd=tmp,
                       timeout=timeout, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    stream = read_stream(tmp)
    events = hellos(stream) + parse_messages(p.stderr) + [{"kind": "exit", "status": str(p.returncode)}]
    return Run(p.returncode, events, stream, p.stderr, p.stdout)


def read_stream(tmp):
    with open(os.path.join(tmp, "stream.raw"), "rb") as f:
        return f.read()


def hellos(stream):
    """A "hello" event for each hello frame of the stream, with the agent's pid."""
    return [dict(json.loads(p), kind="hello", pid=str(json.loads(p).get("pid")))
            for t, p in split_frames(stream) if t == "hello"]


WROTE = re.compile(r'^leakdiff: wrote (.+) \(snapshot (\d+), (\w+)(?: "([^"]*)")?, ')


def parse_message(line):
    """One line of the recorder's stderr as an event: "snapshot" for each
    file written (seq, trigger, label and path), "dropped", "invalid" and
    "broken" for the stream's troubles, "log" for the agent's messages,
    "note" for anything else the recorder says."""
    m = WROTE.match(line)
    if m:
        return {"kind": "snapshot", "path": m.group(1), "seq": m.group(2), "trigger": m.group(3),
                "label": m.group(4) if m.group(4) is not None else m.group(3), "text": line}
    if line.startswith("leakdiff: agent: "):
        return {"kind": "log", "text": line}
    if re.match(r"^leakdiff: snapshot \d+ from the agent is invalid", line):
        return {"kind": "invalid", "text": line}
    if re.match(r"^leakdiff: snapshot \d+ was dropped", line):
        return {"kind": "dropped", "text": line}
    if line.endswith("; no further snapshots will be read"):
        return {"kind": "broken", "text": line}
    return {"kind": "note", "text": line}


def parse_messages(text):
    return [parse_message(line) for line in text.splitlines()]


def frames_of(snap):
    """Sites as (count, bytes, [(file, line, function, function_line), ...])."""
    strings = snap["strings"]
    frames = [(strings[f[0]], f[1], strings[f[2]], f[3] if len(f) > 3 else -1) for f in snap["frames"]]
    return [(s[0], s[1], [frames[i] for i in s[2]]) for s in snap["sites"]]


def load(ev):
    return harness.load_snap(ev["path"])


def split_frames(stream):
    """The frames of a raw pipe stream as (tag, payload bytes)."""
    out, i = [], 0
    while i < len(stream):
        nl = stream.index(b"\n", i)
        tag, n = stream[i:nl].split(b" ")
        n = int(n)
        payload = stream[nl + 1:nl + 1 + n]
        assert stream[nl + 1 + n:nl + 2 + n] == b"\n", "frame not followed by a newline"
        out.append((tag.decode(), payload))
        i = nl + 2 + n
    return out


def first_hello(path, timeout=60):
    """Waits until the stream copied to path holds a whole hello frame; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        with open(path, "rb") as f:
            data = f.read()
        nl = data.find(b"\n")
        if nl > 0:
            n = int(data[:nl].split(b" ")[1])
            if len(data) >= nl + 2 + n:
                return split_frames(data[:nl + 2 + n])[0]
        if time.monotonic() > deadline:
            raise AssertionError("no hello frame after %ds: %r" % (timeout, data))
        time.sleep(0.02)


def marker_line(name, marker):
    return harness.source_line(os.path.join(HERE, name), marker)


class NativeCase(harness.TempDirCase):
    def snapshots(self, events, trigger=None):
        snaps = [e for e in events if e["kind"] == "snapshot"]
        return [e for e in snaps if trigger is None or e["trigger"] == trigger]

    def site_at(self, snap, file_suffix, line):
        """The sites whose innermost frame is file:line."""
        return [s for s in frames_of(snap) if s[2] and s[2][0][0].endswith(file_suffix) and s[2][0][1] == line]


class StaticFunction(NativeCase):
    """(a) every tenth record kept by a static function."""

    def run_n(self, n):
        rc, events, stream, err, _ = record(self.tmp, [PROG_STATIC, str(n)])
        self.assertEqual(rc, 0, err)
        exits = self.snapshots(events, "exit")
        self.assertEqual(len(exits), 1, events)
        return load(exits[0]), events, stream

    def test_exact_counts(self):
        line = marker_line("prog_static.c", "RECORD-SITE")
        for n in (10000, 30000):
            with self.subTest(n=n):
                snap, _, _ = self.run_n(n)
                sites = self.site_at(snap, "tests/native/prog_static.c", line)
                self.assertEqual(len(sites), 1, frames_of(snap)[:5])
                count, size, frames = sites[0]
                self.assertEqual(count, n // 10)
                self.assertEqual(size, n // 10 * 32)
                self.assertEqual(frames[0][2], "new_record")
                names = [f[2] for f in frames]
                self.assertIn("keep_every_tenth", names)
                self.assertIn("main", names)
                # No allocation of the agent, and nothing else of the program's.
                self.assertEqual(snap["totals"]["heap_blocks"], n // 10)

    def test_paths_relative_to_comp_dir(self):
        snap, _, _ = self.run_n(100)
        files = {f[0] for s in frames_of(snap) for f in s[2]}
        ours = [f for f in files if f.endswith("prog_static.c")]
        self.assertTrue(ours)
        for f in ours:
            self.assertFalse(f.startswith("/"), f)
        # The program's compilation directory (the build tree) is a root.
        build = os.path.realpath(os.path.join(os.path.dirname(PROG_STATIC), "..", ".."))
        roots = [os.path.realpath(r) for r in snap["meta"]["roots"] if os.path.isabs(r)]
        self.assertIn(build, roots, snap["meta"]["roots"])

    def test_meta_and_protocol(self):
        snap, events, stream = self.run_n(1000)
        meta = snap["meta"]
        self.assertEqual(meta["runtime"], "native")
        self.assertEqual(meta["trigger"], "exit")
        self.assertEqual(meta["label"], "exit")
        self.assertEqual(meta["seq"], 1)
        self.assertEqual(meta["depth"], 32)
        self.assertEqual(os.path.realpath(meta["executable"]), os.path.realpath(PROG_STATIC))
        self.assertTrue(meta["agent"].startswith("leakdiff-native "))
        self.assertRegex(meta["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(snap["types"], [])
        # The recorder, not the agent, knows the command line.
        self.assertEqual(meta["command"], [PROG_STATIC, "1000"])
        frames = split_frames(stream)
        self.assertEqual(frames[0][0], "hello")
        hello = json.loads(frames[0][1])
        self.assertEqual(hello["protocol"], "leakdiff-pipe")
        self.assertEqual(hello["version"], 1)
        self.assertEqual(hello["runtime"], "native")
        self.assertIs(hello["signal"], True)
        self.assertEqual(hello["depth"], 32)
        self.assertGreater(hello["pid"], 0)
        tags = [t for t, _ in frames]
        self.assertEqual(tags[1], "begin")
        self.assertEqual(tags[-1], "end")
        doc = b"".join(p for t, p in frames if t == "data")
        end = json.loads(frames[-1][1])
        self.assertEqual(end["bytes"], len(doc))
        self.assertEqual(end["crc32"], zlib.crc32(doc))
        raw = json.loads(doc)
        self.assertEqual(raw["format"], "leakdiff-native-raw")
        self.assertTrue(all(len(m["build_id"]) in (0, 40) for m in raw["modules"]))
        self.assertEqual(len(raw["modules"][0]["build_id"]), 40)
        self.assertTrue(raw["modules"][0]["path"].endswith("prog_static"))

    def test_depth_is_honoured(self):
        rc, events, _, err, _ = record(self.tmp, [PROG_STATIC, "100"], depth=2)
        self.assertEqual(rc, 0, err)
        snap = load(self.snapshots(events, "exit")[0])
        line = marker_line("prog_static.c", "RECORD-SITE")
        sites = self.site_at(snap, "prog_static.c", line)
        self.assertEqual(sum(s[0] for s in sites), 10)
        # Two return addresses; inlining may turn them into more frames.
        self.assertEqual(snap["meta"]["depth"], 2)

    def test_signal_snapshot(self):
        """kill -USR2 while the program waits: a snapshot with trigger signal."""
        cmd = record_cmd(self.tmp, [PROG_STATIC, "5000", "--wait"])
        p = subprocess.Popen(cmd, env=harness.program_env(), cwd=self.tmp, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "ready")
            # The agent said hello before main(); its pid is the program's.
            tag, payload = first_hello(os.path.join(self.tmp, "stream.raw"))
            self.assertEqual(tag, "hello")
            hello = json.loads(payload)
            os.kill(int(hello["pid"]), signal.SIGUSR2)
            ev = parse_message(p.stderr.readline().rstrip("\n"))
            self.assertEqual((ev["kind"], ev["trigger"], ev["seq"]), ("snapshot", "signal", "1"), ev)
            self.assertEqual(os.path.basename(ev["path"]), "run.1.snap")
            line = marker_line("prog_static.c", "RECORD-SITE")
            sites = self.site_at(load(ev), "prog_static.c", line)
            self.assertEqual([s[0] for s in sites], [500])
            p.stdin.write("go\n")
            p.stdin.close()
            rest = parse_messages(p.stderr.read())
            self.assertEqual(p.wait(timeout=60), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        exits = self.snapshots(rest, "exit")
        self.assertEqual([e["seq"] for e in exits], ["2"])

    def test_sampling_estimates(self):
        """--sample: Poisson sampling by bytes with unbiased estimates.

        A block of n bytes is picked with probability p = 1 - exp(-n/MEAN)
        and then counts 1/p blocks and n/p bytes, so the estimates over k
        live blocks have variance k (1 - p) / p and k n^2 (1 - p) / p
        (tests/e2e/test_sampled.py works this out in full). Six standard
        deviations, as there, for 30,000 live 32-byte blocks at MEAN = 64
        (p = 0.39) is 4.3% of the true figures, so an estimator 6% off (the
        28,200 of 30,000, or 2,820 of 3,000, of a wrong one) fails, while a
        correct one fails about twice in a billion runs."""
        n, size, mean, sigmas = 300000, 32, 64, 6
        rc, events, stream, err, _ = record(self.tmp, [PROG_STATIC, str(n)], extra=["--sample=%d" % mean])
        self.assertEqual(rc, 0, err)
        hello = json.loads(split_frames(stream)[0][1])
        self.assertEqual(hello["sample"], 64)
        snap = load(self.snapshots(events, "exit")[0])
        self.assertEqual(snap["meta"]["sample"], 64)
        line = marker_line("prog_static.c", "RECORD-SITE")
        sites = self.site_at(snap, "prog_static.c", line)
        self.assertEqual(len(sites), 1)
        live = n // 10
        p = -math.expm1(-size / mean)
        tol_count = sigmas * math.sqrt(live * (1 - p) / p)
        tol_bytes = sigmas * math.sqrt(live * size * size * (1 - p) / p)
        # The check is tight enough to catch a 6% bias at all.
        self.assertLess(tol_count, 0.06 * live)
        self.assertLess(tol_bytes, 0.06 * live * size)
        self.assertLessEqual(abs(sites[0][0] - live), tol_count,
                             "count: estimate %d, true %d, tolerance %.0f" % (sites[0][0], live, tol_count))
        self.assertLessEqual(abs(sites[0][1] - live * size), tol_bytes,
                             "bytes: estimate %d, true %d, tolerance %.0f" % (sites[0][1], live * size, tol_bytes))

    def test_sampling_every_block_sees_every_free(self):
        """--sample=1 picks every block (p = 1 - e^-32), so the site
        must hold exactly the 3,000 blocks still live: each of the 27,000
        frees has to find its block, past the sampled mode's free filter."""
        rc, events, stream, err, _ = record(self.tmp, [PROG_STATIC, "30000"], extra=["--sample=1"])
        self.assertEqual(rc, 0, err)
        snap = load(self.snapshots(events, "exit")[0])
        line = marker_line("prog_static.c", "RECORD-SITE")
        sites = self.site_at(snap, "prog_static.c", line)
        self.assertEqual(len(sites), 1)
        self.assertEqual((round(sites[0][0]), round(sites[0][1])), (3000, 96000), sites[0][:2])

    def test_not_active_without_pipe(self):
        """Preloaded without a recorder the agent stays out of the way: the
        program's status and output are its own, no file appears in its
        working or temporary directory, and a descriptor it inherited is
        neither written nor moved."""
        work = self.path("work")
        os.mkdir(work)
        env = dict(os.environ, TMPDIR=work)
        for name in ("LEAKDIFF_FD", "LEAKDIFF_PIPE"):
            env.pop(name, None)
        plain = subprocess.run([PROG_STATIC, "1000"], env=env, cwd=work, timeout=60,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual((plain.returncode, plain.stdout, plain.stderr), (0, b"", b""))
        path = self.path("victim")
        r, w = os.pipe()
        try:
            with open(path, "w") as f:
                env["LD_PRELOAD"] = PRELOAD
                p = subprocess.run([PROG_STATIC, "1000"], env=env, cwd=work, timeout=60,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   pass_fds=(f.fileno(), w))
                self.assertEqual(os.lseek(f.fileno(), 0, os.SEEK_CUR), 0)
            os.close(w)
            w = -1
            self.assertEqual(os.read(r, 1), b"")
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        self.assertEqual(p.returncode, 0)
        self.assertEqual((p.stdout, p.stderr), (plain.stdout, plain.stderr))
        self.assertEqual(os.path.getsize(path), 0)
        self.assertEqual(os.listdir(work), [])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["victim", "work"])

    def test_wrong_pipe_is_not_written(self):
        """LEAKDIFF_PIPE naming another file: the descriptor is left alone."""
        path = os.path.join(self.tmp, "victim")
        with open(path, "w") as f:
            env = dict(os.environ, LD_PRELOAD=PRELOAD, LEAKDIFF_FD=str(f.fileno()), LEAKDIFF_PIPE="1:1")
            p = subprocess.run([PROG_STATIC, "1000"], env=env, timeout=60, pass_fds=(f.fileno(),))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(os.path.getsize(path), 0)

    def test_dead_recorder_does_not_kill_target(self):
        """The pipe's reader is gone before the program exits: no SIGPIPE death."""
        r, w = os.pipe()
        st = os.fstat(w)
        env = dict(os.environ, LD_PRELOAD=PRELOAD, LEAKDIFF_FD=str(w),
                   LEAKDIFF_PIPE="%d:%d" % (st.st_dev, st.st_ino))
        p = subprocess.Popen([PROG_STATIC, "2000", "--wait"], env=env, pass_fds=(w,),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        os.close(w)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        os.close(r)
        p.stdin.write("go\n")
        p.stdin.close()
        self.assertEqual(p.wait(timeout=60), 0)


class Semantics(NativeCase):
    """Every interposed function behaves as glibc's and is counted."""

    def test_same_results_and_every_block_counted(self):
        plain = subprocess.run([PROG_SEMANTICS, "print"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        rc, events, _, err, out = record(self.tmp, [PROG_SEMANTICS, "print"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, plain.stdout)
        snap = load(self.snapshots(events, "exit")[0])
        ours = [s for s in frames_of(snap) if s[2][0][0].endswith("prog_semantics.c")]
        sizes = sorted(s[1] for s in ours if s[0] == 1)
        # malloc, calloc, realloc, reallocarray, posix_memalign,
        # aligned_alloc, memalign, valloc, pvalloc: one block each.
        self.assertEqual([z for z in sizes if z < 2000], list(range(1001, 1010)))
        # The program prints 1 when the kernel let it keep a 5 GiB block.
        kept_big = "1" in out.splitlines()
        big = [z for z in sizes if z > (4 << 30)]
        self.assertEqual(big, [(5 << 30) + 11] if kept_big else [])
        self.assertEqual(sum(s[0] for s in ours), 9 + len(big))
        dup = [s for s in frames_of(snap) if s[1] == 11]
        self.assertEqual(len(dup), 1)
        self.assertIn("main", [f[2] for f in dup[0][2]])


class Exec(NativeCase):
    """Programs the target execs are not traced, unless LEAKDIFF_FOLLOW_EXEC=1."""

    def test_exec_is_followed_for_the_same_pid(self):
        """The shell execs the program in its own process: the agent comes
        along (issue 15; this replaced the test that the exec'd program was
        not recorded), says hello again with the same pid and writes the
        at-exit snapshot of the program the shell became."""
        rc, events, stream, err, _ = record(self.tmp, ["/bin/sh", "-c", 'exec "$0" 100', PROG_STATIC])
        self.assertEqual(rc, 0, err)
        hellos = [json.loads(p) for t, p in split_frames(stream) if t == "hello"]
        self.assertEqual(len(hellos), 2)
        self.assertEqual(hellos[0]["pid"], hellos[1]["pid"])
        self.assertNotEqual(os.path.basename(hellos[0]["executable"]), "prog_static")
        self.assertEqual(os.path.basename(hellos[1]["executable"]), "prog_static")
        self.assertEqual([e["kind"] for e in events if e["kind"] not in ("hello", "exit")], ["snapshot"], events)
        exits = self.snapshots(events, "exit")
        self.assertEqual(len(exits), 1, events)
        line = marker_line("prog_static.c", "RECORD-SITE")
        self.assertEqual([s[0] for s in self.site_at(load(exits[0]), "prog_static.c", line)], [10])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["run.snap", "stream.raw"])

    def test_forked_child_that_execs_is_not_traced(self):
        """A child the shell forks runs the program untraced (no hello of
        its own), while the exec'd program is recorded."""
        rc, events, stream, err, _ = record(self.tmp, ["/bin/sh", "-c", '"$0" 300; exec "$0" 100',
                                                       PROG_STATIC])
        self.assertEqual(rc, 0, err)
        hellos = [json.loads(p) for t, p in split_frames(stream) if t == "hello"]
        self.assertEqual(len({h["pid"] for h in hellos}), 1, hellos)
        exits = self.snapshots(events, "exit")
        self.assertEqual(len(exits), 1, events)
        line = marker_line("prog_static.c", "RECORD-SITE")
        self.assertEqual([s[0] for s in self.site_at(load(exits[0]), "prog_static.c", line)], [10])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["run.snap", "stream.raw"])

    def test_follow_exec(self):
        rc, events, stream, err, _ = record(self.tmp, ["/bin/sh", "-c", 'exec "$0" 100', PROG_STATIC],
                                         env={"LEAKDIFF_FOLLOW_EXEC": "1"})
        self.assertEqual(rc, 0, err)
        hellos = [json.loads(p) for t, p in split_frames(stream) if t == "hello"]
        self.assertEqual(len(hellos), 2)
        self.assertNotEqual(os.path.basename(hellos[0]["executable"]), "prog_static")
        self.assertEqual(os.path.basename(hellos[1]["executable"]), "prog_static")
        exits = self.snapshots(events, "exit")
        self.assertEqual(len(exits), 1, events)
        line = marker_line("prog_static.c", "RECORD-SITE")
        self.assertEqual([s[0] for s in self.site_at(load(exits[0]), "prog_static.c", line)], [10])


@unittest.skipUnless(PROG_CXX, "no C++ compiler")
class CxxMethod(NativeCase):
    """(b) a std::map filled by a C++ method."""

    def test_demangled_method_in_top_site(self):
        rc, events, _, err, _ = record(self.tmp, [PROG_CXX, "5000"])
        self.assertEqual(rc, 0, err)
        snap = load(self.snapshots(events, "exit")[0])
        sites = sorted(frames_of(snap), key=lambda s: -s[1])
        top = sites[0]
        names = [f[2] for f in top[2]]
        self.assertIn("shop::PriceCache::remember", names)
        self.assertEqual(top[0], 5000)
        line = marker_line("prog_cxx.cpp", "CACHE-SITE")
        ours = [f for f in top[2] if f[2] == "shop::PriceCache::remember"]
        self.assertEqual(ours[0][1], line)
        self.assertTrue(ours[0][0].endswith("tests/native/prog_cxx.cpp"), ours[0])
        # The innermost frames are the library's, not the program's.
        self.assertNotEqual(top[2][0][2], "shop::PriceCache::remember")


class RememberedStacks(NativeCase):
    """The agent remembers stacks by the allocation's return address and
    stack pointer and checks the words above (agents/native/memo.c).
    prog_stacks reaches one malloc through callers laid out alike, through a
    realigned frame, through alloca and through recursion, interleaved:
    every path must keep exactly its own count, whether or not the program
    has frame pointers."""

    def check(self, prog):
        n = 16000
        rc, events, _, err, _ = record(self.tmp, [prog, str(n)])
        self.assertEqual(rc, 0, err)
        snap = load(self.snapshots(events, "exit")[0])
        line = marker_line("prog_stacks.c", "LEAF-SITE")
        counts, deep_depths = {}, set()
        for count, size, frames in self.site_at(snap, "tests/native/prog_stacks.c", line):
            names = [f[2] for f in frames]
            self.assertEqual(names[:2], ["leaf", "mid"], names)
            path = next(p for p in ("via_deep", "via_red", "via_blue", "via_aligned", "via_alloca")
                        if p in names)
            counts[path] = counts.get(path, 0) + count
            self.assertEqual(size, count * 32)
            if path == "via_deep":
                deep_depths.add(names.count("via_deep"))
                self.assertEqual(names[names.index("via_deep") - 1], "via_red", names)
        self.assertEqual(counts, {"via_red": 3 * n // 8, "via_blue": 2 * n // 8, "via_aligned": n // 8,
                                  "via_alloca": n // 8, "via_deep": n // 8})
        self.assertEqual(deep_depths, {1, 2, 3})

    def test_plain(self):
        self.check(PROG_STACKS)

    def test_frame_pointers(self):
        self.check(PROG_STACKS_FP)


class ThreadsAndFork(NativeCase):
    """(c) four threads churning, one function retaining, fork and exec halfway."""

    def test_exact_counts_and_children(self):
        iterations = 20000
        rc, events, stream, err, _ = record(self.tmp, [PROG_THREADS, str(iterations)], timeout=300)
        self.assertEqual(rc, 0, (err, events))
        self.assertEqual([e["kind"] for e in events if e["kind"] in ("hello", "broken", "dropped", "invalid")],
                         ["hello"], events)
        api = self.snapshots(events, "api")
        self.assertEqual([(e["seq"], e["label"]) for e in api], [("1", "halfway")])
        exits = self.snapshots(events, "exit")
        self.assertEqual([e["seq"] for e in exits], ["2"])
        snap = load(exits[0])
        line = marker_line("prog_threads.c", "RETAIN-SITE")
        sites = self.site_at(snap, "tests/native/prog_threads.c", line)
        # Each worker kept one block in 100; main freed every other one of
        # them, from another thread than the one that allocated it.
        want = 4 * ((iterations + 99) // 100) // 2
        self.assertEqual(sum(s[0] for s in sites), want, frames_of(snap)[:3])
        self.assertEqual(sum(s[1] for s in sites), want * 24)
        for s in sites:
            self.assertEqual(s[2][0][2], "retain")
            self.assertIn("churn", [f[2] for f in s[2]])
        # Everything else the threads allocated was freed again; what is left
        # is main's array of kept pointers, stdio's buffer and the threads'
        # TLS vectors that glibc keeps for reuse.
        others = [s for s in frames_of(snap) if s not in sites]
        for s in others:
            self.assertNotIn("churn", [f[2] for f in s[2]], s)
        hellos = [t for t, _ in split_frames(stream) if t == "hello"]
        self.assertEqual(len(hellos), 1)

    def test_repeated_runs_do_not_deadlock(self):
        for i in range(3):
            with self.subTest(run=i):
                rc, events, _, err, _ = record(self.tmp, [PROG_THREADS, "5000"], timeout=120)
                self.assertEqual(rc, 0, err)
                self.assertEqual(len(self.snapshots(events, "exit")), 1)


if __name__ == "__main__":
    harness.main()
