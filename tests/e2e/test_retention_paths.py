#!/usr/bin/env python3
"""End to end: retention paths explain what grew, and only what grew.

Five small programs leak in the ways the Python guide lists, each by a
number of objects known by construction: caught exceptions kept with
their tracebacks (the tracebacks keep each frame's locals), closures
subscribed to an event bus and never unsubscribed, finished asyncio tasks
kept in a set, threads filling a cache held in a local of a frame that
never returns, and pending tasks holding a list in a local.  Each is
recorded at two sizes; the diff must name a path from the root a person
knows (a module global, a thread's frame, a task) down to the type that
grew, and no path for a type whose count did not grow.
"""
import harness
from harness import PYTHON, TempDirCase, diff_json, find, leakdiff, load_snap, source_line

SMALL, LARGE = 300, 900
# The paths are searched within a time budget; give them room on a loaded
# machine so that the assertions test the search, not the clock.
ENV = {"LEAKDIFF_PATH_SECONDS": "10"}

EXCEPTIONS = '''\
import sys

N = int(sys.argv[1])
errors = []


def parse(i):
    buf = bytearray(64)             # leak: buffer
    raise ValueError("bad record")


for i in range(N):
    try:
        parse(i)
    except ValueError as e:
        errors.append(e)
'''

EVENT_BUS = '''\
import sys

N = int(sys.argv[1])


class EventBus:
    def __init__(self):
        self.handlers = []

    def subscribe(self, handler):
        self.handlers.append(handler)


class Report:
    def __init__(self, i):
        self.i = i


bus = EventBus()


def open_report(i):
    report = Report(i)              # leak: report

    def on_event(event):            # leak: handler
        return report.i
    bus.subscribe(on_event)


for i in range(N):
    open_report(i)
'''

TASKS = '''\
import asyncio
import sys

N = int(sys.argv[1])
finished = set()


class Result:
    def __init__(self, i):
        self.i = i


async def job(i):
    return Result(i)                # leak: result


async def main():
    for i in range(N):
        finished.add(asyncio.ensure_future(job(i)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert all(t.done() for t in finished)


asyncio.run(main())
'''

THREADS = '''\
import sys
import threading
import time

import leakdiff

N = int(sys.argv[1])
WORKERS = 2


class Entry:
    def __init__(self, key):
        self.key = key


ready = threading.Barrier(WORKERS + 1)
done = threading.Event()


def fill(n):
    cache = {}
    for k in range(n):
        cache[k] = Entry(k)         # leak: entry
    ready.wait()
    done.wait()                     # root: the frame holding the cache


workers = [threading.Thread(target=fill, args=(N,), name="filler-%d" % w)
           for w in range(2)]
for w in workers:
    w.start()
ready.wait()


def parked(f):
    """True when f's thread is in fill(), at done.wait()."""
    while f is not None and f.f_code is not fill.__code__:
        f = f.f_back
    return f is not None and f.f_lineno == fill.__code__.co_firstlineno + 5


# Past the barrier a worker may still be at its line for a moment: the
# snapshot waits until both stand at done.wait(), the line the test names.
while sum(parked(f) for f in sys._current_frames().values()) < WORKERS:
    time.sleep(0.001)
leakdiff.snapshot("filled")
done.set()
for w in workers:
    w.join()
'''

PENDING = '''\
import asyncio
import sys

import leakdiff

N = int(sys.argv[1])


class Chunk:
    pass


async def collect(n, gate):
    chunks = [Chunk() for _ in range(n)]
    await gate.wait()               # root: the pending task
    return len(chunks)


async def main():
    gate = asyncio.Event()
    tasks = [asyncio.ensure_future(collect(N, gate)) for _ in range(2)]
    await asyncio.sleep(0)
    leakdiff.snapshot("pending")
    gate.set()
    await asyncio.gather(*tasks)


asyncio.run(main())
'''

# Held where no global names it: an entry of sys.modules that is no module,
# and a list only the interpreter's C structures hold (atexit keeps its
# callbacks' arguments out of the collector's sight).
C_ROOTS = '''\
import atexit
import sys

N = int(sys.argv[1])


class Registry:
    def __init__(self):
        self.items = []


class Item:
    pass


class Blob:
    pass


def flush(blobs):
    pass


def main():
    registry = sys.modules["registry"] = Registry()
    blobs = []
    for i in range(N):
        registry.items.append(Item())   # leak: item
        blobs.append(Blob())            # leak: blob
    atexit.register(flush, blobs)


main()
'''

# NumPy makes arrays of its own at import (polynomial domains and the
# like); the path must explain the arrays the program keeps, not those.
NUMPY_FRAMES = '''\
import sys

import numpy

N = int(sys.argv[1])
frames = []

for i in range(N):
    frames.append(numpy.zeros(16) + i)    # leak: frame
'''


class RetentionPaths(TempDirCase):
    tracer = ()     # options that pick the agent's recorder of allocations

    def pair(self, name, source, snap="", python=PYTHON, env=None):
        """Record the program at both sizes; the diff as JSON.  ``snap`` is
        the suffix of the snapshot to compare (".1" for the first one the
        program asks for); ``env`` adds to ENV."""
        prog = self.path(name + ".py")
        with open(prog, "w") as f:
            f.write(source)
        outs = []
        for n in (SMALL, LARGE):
            out = self.path("%s-%d.snap" % (name, n))
            r = leakdiff("record", "-o", out, *self.tracer, "--", python, prog, str(n),
                         env=dict(ENV, **(env or {})), cwd=self.tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("path hints skipped", r.stderr)
            outs.append(out[:-len(".snap")] + snap + ".snap")
        self.prog = prog
        return diff_json(*outs)

    def type_row(self, d, name):
        row = find(d["types"], name=name)
        self.assertIsNotNone(row, [t["name"] for t in d["types"]])
        return row

    def path_of(self, d, tname):
        p = find(d["hints"], kind="path", type=tname)
        self.assertIsNotNone(p, [h for h in d["hints"] if h["kind"] == "path"])
        self.assertEqual(p["path"][-1], tname)
        return p["path"]

    def assert_only_grown_paths(self, d):
        for h in d["hints"]:
            if h["kind"] != "path":
                continue
            with self.subTest(path=h["path"]):
                row = find(d["types"], name=h["type"])
                self.assertIsNotNone(row)
                self.assertGreater(row["count_delta"], 0)

    def test_exceptions_kept_with_tracebacks(self):
        d = self.pair("errors", EXCEPTIONS)
        grown = LARGE - SMALL
        row = self.type_row(d, "bytearray")
        self.assertEqual(row["count_delta"], grown)
        top = row["sites"][0]["frames"][0]
        self.assertEqual(top["line"], source_line(self.prog, "# leak: buffer"))
        self.assertEqual(self.type_row(d, "ValueError")["count_delta"], grown)
        # bytearray <- frame <- traceback (<- traceback) <- ValueError <- list <- errors
        path = self.path_of(d, "bytearray")
        self.assertEqual(path[:3], ["__main__.errors", "list", "ValueError"])
        self.assertEqual(path[-2:], ["frame", "bytearray"])
        self.assertTrue(path[3:-2] and set(path[3:-2]) == {"traceback"}, path)
        self.assertEqual(self.path_of(d, "ValueError"), ["__main__.errors", "list", "ValueError"])
        self.assert_only_grown_paths(d)

    def test_closures_on_an_event_bus(self):
        d = self.pair("bus", EVENT_BUS)
        grown = LARGE - SMALL
        self.assertEqual(self.type_row(d, "__main__.Report")["count_delta"], grown)
        self.assertEqual(self.type_row(d, "cell")["count_delta"], grown)
        # One bus in both runs: not in the diff's types, which lists changes.
        self.assertIsNone(find(d["types"], name="__main__.EventBus"))
        self.assertEqual(self.path_of(d, "__main__.Report"),
                         ["__main__.bus", "__main__.EventBus", "list", "function", "cell",
                          "__main__.Report"])
        self.assertEqual(self.path_of(d, "function"),
                         ["__main__.bus", "__main__.EventBus", "list", "function"])
        # The bus did not grow: no path for it.  (From 3.11 the recording
        # has one, the bus being among the program's most numerous types
        # there; older interpreters have more types of their own.)
        snap = load_snap(self.path("bus-%d.snap" % LARGE))
        if tuple(int(x) for x in snap["meta"]["python"].split(".")[:2]) >= (3, 11):
            self.assertIn("__main__.EventBus",
                          [h["type"] for h in snap["hints"] if h["kind"] == "path"])
        self.assertIsNone(find(d["hints"], kind="path", type="__main__.EventBus"))
        self.assert_only_grown_paths(d)

    def test_finished_tasks_kept_in_a_set(self):
        d = self.pair("tasks", TASKS)
        grown = LARGE - SMALL
        self.assertEqual(self.type_row(d, "__main__.Result")["count_delta"], grown)
        task = self.type_row(d, "_asyncio.Task")
        self.assertEqual(task["count_delta"], grown)
        self.assertEqual(self.path_of(d, "_asyncio.Task"), ["__main__.finished", "set", "_asyncio.Task"])
        self.assertEqual(self.path_of(d, "__main__.Result"),
                         ["__main__.finished", "set", "_asyncio.Task", "__main__.Result"])
        h = find(d["hints"], kind="container", name="__main__.finished")
        self.assertEqual((h["before"], h["after"]), (SMALL, LARGE))
        self.assert_only_grown_paths(d)

    def test_threads_filling_a_local_cache(self):
        d = self.pair("threads", THREADS, snap=".1")
        self.assertEqual(self.type_row(d, "__main__.Entry")["count_delta"], 2 * (LARGE - SMALL))
        path = self.path_of(d, "__main__.Entry")
        line = source_line(self.prog, "# root: the frame")
        self.assertEqual(len(path), 3, path)
        self.assertRegex(path[0], r"^thread filler-[01]: frame fill at threads\.py:%d$" % line)
        self.assertEqual(path[1:], ["dict", "__main__.Entry"])
        self.assert_only_grown_paths(d)

    def test_pending_tasks(self):
        d = self.pair("pending", PENDING, snap=".1")
        self.assertEqual(self.type_row(d, "__main__.Chunk")["count_delta"], 2 * (LARGE - SMALL))
        path = self.path_of(d, "__main__.Chunk")
        line = source_line(self.prog, "# root: the pending task")
        self.assertRegex(path[0], r"^task Task-\d+: coroutine collect at pending\.py:%d$" % line)
        # Before 3.11 a coroutine holds its locals through a frame object.
        self.assertIn(path[1:], (["coroutine", "list", "__main__.Chunk"],
                                 ["coroutine", "frame", "list", "__main__.Chunk"]))
        self.assert_only_grown_paths(d)

    def test_c_level_roots(self):
        d = self.pair("croots", C_ROOTS)
        grown = LARGE - SMALL
        self.assertEqual(self.type_row(d, "__main__.Item")["count_delta"], grown)
        self.assertEqual(self.type_row(d, "__main__.Blob")["count_delta"], grown)
        self.assertEqual(self.path_of(d, "__main__.Item"),
                         ["sys.modules['registry']", "__main__.Registry", "list", "__main__.Item"])
        # atexit holds (flush, (blobs,)) in C; how it stores them differs
        # between versions, the list of blobs is the program's.
        path = self.path_of(d, "__main__.Blob")
        self.assertRegex(path[0], r"^held by C code \(refcount \d+, \d+ references? found\)$")
        self.assertEqual(path[-2:], ["list", "__main__.Blob"])
        self.assert_only_grown_paths(d)

    def test_numpy_arrays_in_a_module_list(self):
        python, env = harness.numpy_python()
        if python is None:
            self.skipTest("numpy is not importable by any interpreter here: " + env)
        d = self.pair("arrays", NUMPY_FRAMES, python=python, env=env)
        self.assertEqual(self.type_row(d, "numpy.ndarray")["count_delta"], LARGE - SMALL)
        self.assertEqual(self.path_of(d, "numpy.ndarray"),
                         ["__main__.frames", "list", "numpy.ndarray"])
        self.assert_only_grown_paths(d)


class RetentionPathsTracemalloc(RetentionPaths):
    tracer = ("--tracemalloc",)


if __name__ == "__main__":
    harness.main()
