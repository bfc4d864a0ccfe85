#!/usr/bin/env python3
"""The allocator-hook extension (_sampler) in exact mode, in this process.

start(0, depth) makes it record every block of the MEM and OBJ domains;
the counts below are known by construction. Runs under the interpreter
the extension was built for; LEAKDIFF_EXT_DIR names the directory holding
it (without it, or when it does not load, everything is skipped).
"""
import os
import sys
import threading
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.SOURCE, "agents", "python"))
from leakdiff import _agent  # noqa: E402

import unittest  # noqa: E402

EXT = _agent.load_extension(os.environ.get("LEAKDIFF_EXT_DIR"), "_sampler")
N = 1000
DEAD_MAX = 4096  # sampler.c: unused stacks kept before a cleanup is due


class Slotted:
    # No __init__: before 3.11 its first call would leave a frame object
    # (kept for reuse) allocated at make()'s line.
    __slots__ = ("v",)


def make(v):
    o = Slotted()  # one block per call
    o.v = v
    return o


MAKE_LINE = make.__code__.co_firstlineno + 1


def make_huge():
    return bytes(5 << 30)  # calloc'd: its pages are never touched


HUGE_LINE = make_huge.__code__.co_firstlineno + 1


def rows_at(line):
    """(count, bytes, picked) summed over the live sites whose innermost
    frame is this file at line."""
    count = size = picked = 0
    for frames, c, b, n in EXT.sites():
        if frames and frames[0] == (__file__, line):
            count += c
            size += b
            picked += n
    return count, size, picked


def changes_at(line):
    """(count change, bytes change) since the last mark(), summed over the
    stacks whose innermost frame is this file at line."""
    count = size = 0
    for stack, c, b in EXT.changes():
        frames = EXT.frames(stack)
        if frames and frames[0] == (__file__, line):
            count += c
            size += b
    return count, size


def setUpModule():
    if EXT is None:
        raise unittest.SkipTest("the _sampler extension does not load in this interpreter")
    if not EXT.is_on():
        EXT.start(0.0, 8)


class Exact(unittest.TestCase):
    def test_every_block_counted_and_frees_seen(self):
        keep = [make(i) for i in range(N)]
        count, size, picked = rows_at(MAKE_LINE)
        self.assertEqual((count, picked), (N, N))
        self.assertEqual(size % N, 0)
        self.assertGreaterEqual(size // N, sys.getsizeof(keep[0]) - 2 * 8)
        del keep[::2]
        self.assertEqual(rows_at(MAKE_LINE)[0], N // 2)
        del keep
        self.assertEqual(rows_at(MAKE_LINE)[0], 0)

    def test_blocks_of_4gib_and_more(self):
        # Too big for a slot's 32-bit size: kept beside the table.
        try:
            big = make_huge()
        except MemoryError:
            self.skipTest("no 5 GiB of address space here")
        count, size, picked = rows_at(HUGE_LINE)
        self.assertEqual((count, picked), (1, 1))
        self.assertGreaterEqual(size, 5 << 30)
        self.assertLess(size, (5 << 30) + 4096)
        self.assertEqual(EXT.tally([big], 7)[0][1:], (1, 7.0, 1))
        del big
        self.assertEqual(rows_at(HUGE_LINE), (0, 0, 0))

    def test_code_compiled_at_run_time_is_released(self):
        # Each compiled snippet allocates under its own code object; once
        # its blocks are gone the extension lets the code object go too,
        # without waiting for a snapshot (see DEAD_MAX in sampler.c).
        refs = []
        for i in range(20000):
            code = compile("x = [%d]" % i, "<snippet>", "exec")
            ns = {}
            exec(code, ns)
            refs.append(weakref.ref(code))
            del ns, code
        for _ in range(1000):
            pass  # the main thread runs pending calls between bytecodes
        alive = sum(1 for r in refs if r() is not None)
        self.assertLess(alive, len(refs) // 2)
        # Exactly as many as were forgotten: a cleanup is due once more
        # than DEAD_MAX stacks are unused (the test's own live stacks are
        # far fewer), and each snippet leaves at least one unused stack
        # holding its code object, so at most DEAD_MAX snippets' code
        # objects can be waiting for the next cleanup.
        self.assertLessEqual(alive, DEAD_MAX)
        self.assertLess(EXT.stats()["stacks"], 2 * DEAD_MAX)

    def test_run_time_code_never_piles_up_past_dead_max(self):
        # The bound holds all along, not only at the end: how many code
        # objects are left when the loop stops depends on where the last
        # cleanup fell, and a DEAD_MAX of 16,384 left fewer than 4,096 of
        # 20,000. Counted every 256 snippets, the dead stacks waiting for a
        # cleanup are at most DEAD_MAX + 1 (the one that makes it due) plus
        # the snippets compiled since the count before.
        refs = []
        most = 0
        for i in range(3 * DEAD_MAX):
            code = compile("y = [%d]" % i, "<piling>", "exec")
            ns = {}
            exec(code, ns)
            refs.append(weakref.ref(code))
            del ns, code
            if i % 256 == 255:
                for _ in range(100):
                    pass  # pending calls run between bytecodes
                most = max(most, sum(1 for r in refs if r() is not None))
        self.assertGreater(most, 0)
        self.assertLessEqual(most, DEAD_MAX + 1 + 256)

    def test_stats_say_exact(self):
        stats = EXT.stats()
        self.assertEqual(stats["exact"], 1)
        self.assertEqual(stats["mean"], 0.0)

    def test_tally_by_stack(self):
        keep = [make(i) for i in range(N)]
        rows = EXT.tally(keep, 40)
        self.assertEqual(len(rows), 1)
        stack, count, size, picked = rows[0]
        self.assertEqual((count, size, picked), (N, 40.0 * N, N))
        self.assertEqual(EXT.frames(stack)[0], (__file__, MAKE_LINE))
        # one size per object
        rows = EXT.tally(keep, list(range(N)))
        self.assertEqual(rows[0][1:], (N, float(sum(range(N))), N))
        # objects allocated before start() (or never seen) count nothing
        self.assertEqual(EXT.tally([None, Slotted, sys], 8), [])

    def test_tally_refuses_bad_sizes(self):
        keep = [make(0)]
        with self.assertRaises(TypeError):
            EXT.tally(keep, [1, 2])
        with self.assertRaises(ValueError):
            EXT.tally(keep, -1)
        with self.assertRaises(ValueError):
            EXT.tally(keep, [-5])
        with self.assertRaises(TypeError):
            EXT.tally(tuple(keep), 8)

    def test_changes_since_mark(self):
        keep = [make(i) for i in range(N)]
        one = rows_at(MAKE_LINE)[1] // N    # every block of make() has one size
        EXT.mark()
        self.assertEqual(changes_at(MAKE_LINE), (0, 0))
        more = [make(i) for i in range(N)]
        del keep[::2]
        self.assertEqual(changes_at(MAKE_LINE), (N // 2, N // 2 * one))
        # The same again, as often as it is asked: changes() does not mark.
        self.assertEqual(changes_at(MAKE_LINE), (N // 2, N // 2 * one))
        EXT.mark()
        del more[:N // 4]
        self.assertEqual(changes_at(MAKE_LINE), (-(N // 4), -(N // 4) * one))
        # A block freed and one allocated in its place leave no change.
        EXT.mark()
        more[0] = make(-1)
        self.assertEqual(changes_at(MAKE_LINE), (0, 0))
        del keep, more

    def test_changes_keep_stacks_that_emptied_since_mark(self):
        # sites() forgets stacks without live blocks; one that had some at
        # the mark is kept until the next mark, so its loss is still told.
        keep = [make(i) for i in range(10)]
        EXT.mark()
        del keep
        EXT.sites()
        self.assertEqual(changes_at(MAKE_LINE)[0], -10)
        EXT.mark()
        self.assertEqual(changes_at(MAKE_LINE), (0, 0))

    def test_quiet_thread_is_not_recorded(self):
        kept = {}
        ready, go = threading.Event(), threading.Event()

        def quiet_worker():
            self.assertTrue(EXT.quiet(True))
            try:
                ready.set()
                go.wait(10)
                kept["quiet"] = [make(i) for i in range(N)]
            finally:
                EXT.quiet(False)
            kept["loud"] = [make(i) for i in range(N)]

        t = threading.Thread(target=quiet_worker)
        t.start()
        ready.wait(10)
        # another thread goes on being recorded while one is quiet
        mine = [make(i) for i in range(N)]
        go.set()
        t.join()
        self.assertEqual(EXT.tally(kept["quiet"], 1), [])
        self.assertEqual(EXT.tally(kept["loud"], 1)[0][3], N)
        self.assertEqual(EXT.tally(mine, 1)[0][3], N)
        self.assertEqual(rows_at(MAKE_LINE)[0], 2 * N)


if __name__ == "__main__":
    harness.main()
