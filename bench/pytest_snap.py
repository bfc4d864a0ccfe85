#!/usr/bin/env python3
"""The snapshot the pytest plugin takes between two runs of a test, timed
in a process with OBJECTS live objects (bench/run --only=pytest).

    pytest_snap.py AGENT_DIR OBJECTS REPS

Prints one JSON line: the tracer, then the wall and CPU seconds (process
time, every thread) of each step the plugin takes between two runs of a
test, each after the plugin's clean-up (_settle): "screen" (on the hooks:
garbage collection of what the heap gained since it was frozen, then the
hooks' stacks that changed; what every checked test gets after each run,
until one grows nothing), then the snapshots of a test that is measured
because every screened run grew something: "between" (types and sites
only: after each run), "first" (the same and the hints: before the first
run) and "full" (type x site, hints and retention paths: the one more a
test gets when something grew in every run).  Between two screens the
process does what a small test does: it makes 2,000 objects, keeps 100 of
them in place of the 100 it kept before, and drops the rest.
"""
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
from leakdiff import _inproc, pytest_plugin  # noqa: E402


class Record:
    def __init__(self, n):
        self.n = n
        self.name = "r%d" % n


def main():
    n, reps = int(sys.argv[2]), int(sys.argv[3])
    # A third each of instances of a class of the program, dicts and strings.
    live = [Record(i) for i in range(n // 3)]
    live += [{"k": i} for i in range(n // 3)]
    live += ["s%d" % i for i in range(n - len(live))]
    session = _inproc.Session(ext_dir=pytest_plugin.find_ext_dir(), caller_file=__file__)
    session.snapshot("first")      # the first one also warms the source resolver up
    out = {"tracer": session.tracer(), "screen": [], "screen_cpu": []}
    screen = pytest_plugin._Screen.for_session(session)
    if screen is not None:
        kept = [None] * 100
        pytest_plugin._settle()
        screen.start()
        try:
            for _ in range(reps):
                made = [Record(i) for i in range(2000)]
                kept[:] = made[:100]
                del made
                c0 = time.process_time()
                t0 = time.perf_counter()
                pytest_plugin._settle()
                screen.grew()
                out["screen"].append(time.perf_counter() - t0)
                out["screen_cpu"].append(time.process_time() - c0)
        finally:
            screen.finish()
        del kept
        # What the screen loops over in C: the hooks' interned stacks.
        out["stacks"] = screen.ext.stats()["stacks"]
    kinds = (("between", (False, False, False)), ("first", (False, False, True)),
             ("full", (True, True, True)))
    for key, _how in kinds:
        out[key] = []
        out[key + "_cpu"] = []
    for _ in range(reps):
        for key, how in kinds:
            c0 = time.process_time()
            t0 = time.perf_counter()
            pytest_plugin._settle()
            blob = session.snapshot("bench", *how)
            out[key].append(time.perf_counter() - t0)
            out[key + "_cpu"].append(time.process_time() - c0)
            del blob
    session.close()
    print(json.dumps(out))
    del live


if __name__ == "__main__":
    main()
