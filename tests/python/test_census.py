#!/usr/bin/env python3
"""The census extension (_census) against the pure-Python census.

Both run in this process on the same heap; they must find the same objects,
with the same counts and sizes, and sample the same instances. Runs under
the interpreter the extension was built for; LEAKDIFF_EXT_DIR names the
directory holding it (without it, or when it does not load, the tests that
need it are skipped and the pure-Python ones still run).
"""
import gc
import os
import sys
import threading
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.SOURCE, "agents", "python"))
from leakdiff import _agent, _containers, _hints, _objects, _snapshot, _typeinfo  # noqa: E402

import unittest  # noqa: E402

EXT = _agent.load_extension(os.environ.get("LEAKDIFF_EXT_DIR"), "_census")
AGENT_FILES = _containers.Names([_objects.__file__, __file__])
CODE = type(compile("0", "<test>", "eval"))


def is_agent_type(t):
    return _typeinfo.type_module(t).startswith("leakdiff")


class Thing:
    def __init__(self, i):
        self.i = i
        self.name = "thing-%d" % i


class Slotted:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a


class Hidden:
    """Counts as the agent's: its module is under leakdiff."""
    __module__ = "leakdiff.test_only"
    __slots__ = ("held",)


def build():
    heap = {
        "things": [Thing(i) for i in range(1200)],
        "rows": [(i + 100000, "key-%d" % i, i * 0.5, [], b"x" * (i % 9), "\u00e9-%d" % i,
                  10 ** (i % 45), -(2 ** (i % 70)), Slotted(i), frozenset((i, -i)))
                 for i in range(1500)],
        # Untracked containers (tuples and a dict of atoms) two levels deep.
        "nested": tuple((j, "n%d" % j) for j in range(300)),
        "atoms": [{k: "v%d-%d" % (j, k) for k in range(j % 5)} for j in range(400)],
    }
    return heap


def make_pure():
    return _objects.Census()


def make_fast():
    return _objects.CCensus(EXT)


def census_results(kind, known):
    """(counts, sizes, consts, order) of one census, kept in the agent's
    own containers so that the next census does not count them. order is,
    per type, the ids of the instances found that are in known, in the
    order the census holds them (the order sampling strides through)."""
    gc.collect()
    census = kind()
    census.run(AGENT_FILES, is_agent_type)
    Map = _containers.Map
    counts, sizes, consts, order = Map(), Map(), Map(), Map()
    try:
        for t in _containers.Seq(census.totals):
            counts[t] = census.totals[t][0]
            sizes[t] = census.totals[t][1]
            consts[t] = census.const.get(t)
            order[t] = _containers.Seq(filter(known.__contains__, map(id, census.members(t))))
        counts[None] = census.skipped
    finally:
        census.release()
    # In a Seq: a tuple would be counted by the next census.
    return _containers.Seq((counts, sizes, consts, order))


@unittest.skipIf(EXT is None, "the _census extension is not built for this interpreter")
class SameAsPure(unittest.TestCase):
    def test_same_objects_counts_sizes_and_samples(self):
        heap = build()
        known = _containers.Names(
            map(id, heap["things"] + [x for row in heap["rows"] for x in row]))
        # Twice each, alternating: the first runs settle lazily made state.
        census_results(make_pure, known)
        census_results(make_fast, known)
        pure = census_results(make_pure, known)
        fast = census_results(make_fast, known)
        names = ("counts", "sizes", "consts", "order")
        for name, p, f in zip(names, pure, fast):
            for t in set(p) | set(f):
                if name == "sizes" and t is CODE:
                    continue    # a code object grows as it runs (3.8's opcache)
                with self.subTest(what=name, type=t):
                    self.assertEqual(p.get(t), f.get(t))
        self.assertEqual(fast[0][Thing], 1200)
        self.assertEqual(fast[0][Slotted], 1500)
        self.assertEqual(fast[2][Thing], sys.getsizeof(heap["things"][0]))
        self.assertNotIn(Hidden, fast[0])
        self.assertEqual(len(fast[3][str]), 2 * 1500)
        del heap, known


@unittest.skipIf(EXT is None, "the _census extension is not built for this interpreter")
class CensusInC(unittest.TestCase):
    def run_census(self):
        gc.collect()
        census = _objects.CCensus(EXT)
        census.run(AGENT_FILES, is_agent_type)
        return census

    def test_untracked_atoms_reached_from_a_list(self):
        ints = [10 ** 12 + i for i in range(700)]
        strs = ["untracked-%d" % i for i in range(300)]
        floats = [i + 0.25 for i in range(200)]
        self.assertFalse(any(map(gc.is_tracked, ints + strs + floats)))
        census = self.run_census()
        try:
            for t, objs in ((int, ints), (str, strs), (float, floats)):
                found = set(map(id, census.members(t)))
                self.assertTrue(all(id(x) in found for x in objs), t)
            # Each counted once, with exact sizes.
            seen = census.members(int)
            self.assertEqual(len(seen), len(set(map(id, seen))))
            self.assertEqual(census.totals[float][1], census.totals[float][0] * sys.getsizeof(0.5))
        finally:
            census.release()

    def test_counts_of_known_objects(self):
        things = [Thing(i) for i in range(2345)]
        census = self.run_census()
        try:
            self.assertEqual(census.totals[Thing], (2345, 2345 * sys.getsizeof(things[0])))
            # Every ceil(2345 / limit)-th instance from the first.
            self.assertEqual(len(census.sample(Thing, 100)), 98)      # every 24th
            self.assertEqual(len(census.sample(Thing, 1000)), 782)    # every 3rd
            self.assertEqual(len(census.sample(Thing, 5000)), 2345)
        finally:
            census.release()
        del things

    def test_agent_objects_and_what_they_hold_left_out(self):
        hidden = Hidden()
        hidden.held = "only-held-by-the-agent-%d" % id(hidden)
        census = self.run_census()
        try:
            self.assertNotIn(Hidden, census.totals)
            self.assertIsNone(census.sample(Hidden, 0))
            self.assertNotIn(id(hidden.held), set(map(id, census.members(str))))
        finally:
            census.release()

    def test_release_drops_references(self):
        marker = Thing(-1)
        before = sys.getrefcount(marker)
        census = self.run_census()
        self.assertEqual(sys.getrefcount(marker), before + 1)
        census.release()
        self.assertEqual(sys.getrefcount(marker), before)

    def test_group_traces(self):
        tb1, tb2 = (("a.py", 1),), (("b.py", 2), ("a.py", 3))
        traces = [(0, 10, tb1), (0, 7, tb2), (0, 5, tb1), (1, 1, tb2)]
        self.assertEqual(EXT.group_traces(traces), [(tb1, 2, 15), (tb2, 2, 8)])
        self.assertEqual(_snapshot._group_traces(traces), EXT.group_traces(traces))
        self.assertEqual(EXT.group_traces([]), [])
        with self.assertRaises(ValueError):
            EXT.group_traces([(0, 1)])

    def test_frame_rows(self):
        index = {("a.py", 1): 0}
        added = []

        def add(frame):
            added.append(frame)
            index[frame] = len(index)
            return index[frame]

        tbs = [(("a.py", 1), ("b.py", 2)), (("b.py", 2), ("a.py", 1), ("c.py", 3))]
        self.assertEqual(EXT.frame_rows(tbs, index, add, 2), [[0, 1], [1, 0]])
        self.assertEqual(added, [("b.py", 2)])
        # The document's tables come out the same with and without it.
        tbs.append(tuple(("d.py", n) for n in range(40)))
        fast, pure = _snapshot.Tables({}, EXT), _snapshot.Tables({}, None)
        self.assertEqual(fast.tracebacks(tbs), pure.tracebacks(tbs))
        self.assertEqual((fast.frames, fast.strings), (pure.frames, pure.strings))

    def test_measures(self):
        self.assertEqual(EXT.measure("abc", EXT.STR), 3)
        self.assertEqual(EXT.measure("\u00e9", EXT.STR), -1)
        self.assertEqual(EXT.measure(0, EXT.INT), 0)
        self.assertEqual(EXT.measure(2 ** 100, EXT.INT), -(-101 // sys.int_info.bits_per_digit))
        self.assertEqual(EXT.measure((1, 2, 3), EXT.VAR), 3)


@unittest.skipIf(EXT is None, "the _census extension is not built for this interpreter")
@unittest.skipUnless(EXT, "no _census extension for this interpreter")
class Interface(unittest.TestCase):
    def test_other_interface_is_not_loaded(self):
        """An accelerator built for another interface (an old install next
        to a newer agent) must leave the agent on pure Python."""
        self.assertEqual(EXT.INTERFACE, _agent.EXTENSION_INTERFACES["_census"])
        saved = dict(_agent.EXTENSION_INTERFACES)
        self.addCleanup(_agent.EXTENSION_INTERFACES.update, saved)
        _agent.EXTENSION_INTERFACES["_census"] = EXT.INTERFACE + 1
        self.assertIsNone(_agent.load_extension(os.environ.get("LEAKDIFF_EXT_DIR"), "_census"))
        _agent.EXTENSION_INTERFACES["_census"] = EXT.INTERFACE
        self.assertIsNotNone(_agent.load_extension(os.environ.get("LEAKDIFF_EXT_DIR"), "_census"))


@unittest.skipIf(EXT is None, "the _census extension is not built for this interpreter")
class QuietAllocations(unittest.TestCase):
    def setUp(self):
        if tracemalloc.is_tracing():
            self.skipTest("tracemalloc already started")
        EXT.arm(False)
        tracemalloc.start(4)
        self.addCleanup(tracemalloc.stop)
        self.assertTrue(EXT.arm(True))

    # Slotted, not Thing: on 3.11 tracemalloc cannot find objects whose
    # class keeps a managed dict (python/cpython#101430).

    def test_only_the_quiet_thread_skips_tracing(self):
        from_other = []

        def other():
            from_other.extend(Slotted(i) for i in range(50))

        self.assertTrue(EXT.quiet(True))
        try:
            self.assertFalse(EXT.quiet(True))      # not twice
            quiet = [Slotted(i) for i in range(50)]
            worker = threading.Thread(target=other)
            worker.start()
            worker.join()
        finally:
            EXT.quiet(False)
        loud = [Slotted(i) for i in range(50)]
        get = tracemalloc.get_object_traceback
        self.assertTrue(all(get(x) is None for x in quiet))
        self.assertFalse(any(get(x) is None for x in from_other))
        self.assertFalse(any(get(x) is None for x in loud))
        # Blocks allocated quietly are freed through tracemalloc as usual.
        del quiet
        gc.collect()

    def test_not_after_tracemalloc_restarts_elsewhere(self):
        tracemalloc.stop()
        self.assertFalse(EXT.quiet(True))
        tracemalloc.start(4)
        # Same hooks on top again: quiet mode works again.
        self.assertTrue(EXT.quiet(True))
        EXT.quiet(False)

    def test_stop_while_quiet(self):
        self.assertTrue(EXT.quiet(True))
        tracemalloc.stop()                       # takes our hooks away too
        EXT.quiet(False)
        tracemalloc.start(4)
        x = Slotted(1)
        self.assertIsNotNone(tracemalloc.get_object_traceback(x))


class ContainerHints(unittest.TestCase):
    """Which module-level containers a snapshot names when there are more
    than it keeps (_hints.CONTAINER_HINTS): the largest, the program's own
    before the standard library's."""

    def test_the_largest_are_kept(self):
        most = _hints.CONTAINER_HINTS
        user = {"c%d" % n: list(range(n)) for n in range(1, most + 11)}
        stdlib = {"big": list(range(most + 100)), "small": list(range(999))}
        namespaces = [("app", user, True), ("json", stdlib, False)]
        hints = _hints.container_hints(namespaces, lambda t: t.__name__)
        self.assertEqual(len(hints), most)
        lengths = [h["length"] for h in hints]
        # the program's own containers, longest first, down to the cut
        self.assertEqual(lengths, list(range(most + 10, 10, -1)))
        self.assertEqual(hints[0], {"kind": "container", "name": "app.c%d" % (most + 10),
                                    "type": "list", "length": most + 10})
        self.assertNotIn("json.big", [h["name"] for h in hints])

    def test_the_standard_library_follows_the_program(self):
        user = {"a": [1, 2], "b": [1, 2, 3]}
        stdlib = {"big": list(range(5000)), "small": list(range(999))}
        hints = _hints.container_hints([("json", stdlib, False), ("app", user, True)],
                                       lambda t: t.__name__)
        self.assertEqual([(h["name"], h["length"]) for h in hints],
                         [("app.b", 3), ("app.a", 2), ("json.big", 5000)])


class PureCensus(unittest.TestCase):
    def test_untracked_atoms_reached_from_a_list(self):
        ints = [10 ** 12 + i for i in range(700)]
        gc.collect()
        census = _objects.Census()
        census.run(AGENT_FILES, is_agent_type)
        try:
            found = set(map(id, census.members(int)))
            self.assertTrue(all(id(x) in found for x in ints))
            self.assertNotIn(Hidden, census.totals)
        finally:
            census.release()


if __name__ == "__main__":
    harness.main()
