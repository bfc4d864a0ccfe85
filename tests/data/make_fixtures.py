#!/usr/bin/env python3
"""Writes the hand-made .snap fixtures used by the golden tests.

The snapshots describe a small web app whose Session registry, cache and
lru_cache grow between two points, plus a stdlib allocation reached from app
code, so every table and hint kind of the diff report has a row. Run it from
anywhere; it writes next to itself. gzip mtime is fixed so reruns produce the
same bytes.
"""
import gzip
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = "/srv/app"
STDLIB = "/usr/lib/python3.11"


def snapshot(n_sessions, n_cache, lru, seq, label, pid, collected, root=ROOT, shift=0):
    """shift moves every line of app/session.py down, as an edit above it would."""
    strings = [
        root + "/app/session.py", "login", "Session.__init__",
        root + "/app/server.py", "handle", "<module>",
        STDLIB + "/logging/__init__.py", "Manager.getLogger",
        "app.session.Session", "dict", "str", "logging.Logger",
        root + "/app/cache.py", "remember", "self.store[key] = value",
        "s = Session(user)",
    ]
    frames = [
        [0, 42 + shift, 1, 40 + shift, 15],  # 0 app/session.py:42 in login
        [3, 88, 4, 80, -1],                  # 1 app/server.py:88 in handle
        [3, 120, 5, -1, -1],                 # 2 app/server.py:120 in <module>
        [0, 12 + shift, 2, 11 + shift, -1],  # 3 app/session.py:12 in Session.__init__
        [6, 1372, 7, 1350],                  # 4 logging Manager.getLogger
        [12, 7, 13, 5, 14],                  # 5 app/cache.py:7 in remember
    ]
    n_loggers = 3
    sites = [
        [n_sessions, n_sessions * 56, [0, 1, 2]],
        [n_sessions, n_sessions * 104, [3, 0, 1, 2]],
        [n_cache, n_cache * 72, [5, 1, 2]],
        [n_loggers, n_loggers * 400, [4, 1, 2]],
        # login() called from module level too: merges with the first site
        # when tracebacks are cut to their innermost frame (diff --depth=1)
        [n_sessions // 100, n_sessions // 100 * 56, [0, 2]],
    ]
    if seq == 1:
        sites.append([5, 640, [2]])  # only before: becomes "gone"
    types = [
        [8, n_sessions, n_sessions * 56],
        [9, 1000 + n_sessions + n_cache, (1000 + n_sessions + n_cache) * 104],
        [10, 5000 + n_cache, (5000 + n_cache) * 60],
        [11, n_loggers, n_loggers * 56],
    ]
    type_sites = [
        [0, n_sessions, n_sessions * 56, [0, 1, 2]],
        [1, n_sessions, n_sessions * 104, [3, 0, 1, 2]],
    ]
    heap_blocks = sum(s[0] for s in sites)
    heap_bytes = sum(s[1] for s in sites)
    return {
        "format": "leakdiff-snapshot", "version": 1,
        "meta": {
            "runtime": "python", "agent": "leakdiff-python 0.1.0",
            "command": ["python3", "app/server.py", "--requests", str(n_sessions)],
            "executable": "/usr/bin/python3", "pid": pid, "seq": seq, "label": label,
            "trigger": "exit", "time": "2026-11-28T12:00:0%d.000Z" % seq, "host": "ci",
            "python": "3.11.2", "depth": 16, "tracing": True, "elapsed_ms": 12.5,
            "roots": [root, STDLIB], "stdlib": [STDLIB],
        },
        "strings": strings, "frames": frames,
        "totals": {"heap_bytes": heap_bytes, "heap_blocks": heap_blocks,
                   "objects": sum(t[1] for t in types), "object_bytes": sum(t[2] for t in types)},
        "types": types, "sites": sites, "type_sites": type_sites,
        "gc": {"enabled": True, "collected": collected, "uncollectable": 0, "garbage": 0,
               "generations": [{"collections": 10, "collected": 0, "uncollectable": 0}]},
        "hints": [
            {"kind": "container", "name": "app.session.Session.registry", "type": "list",
             "length": n_sessions},
            {"kind": "container", "name": "app.cache.store", "type": "dict", "length": n_cache},
            {"kind": "container", "name": "app.config.settings", "type": "dict", "length": 12},
            {"kind": "lru_cache", "name": "app.cache.lookup", "maxsize": None, "currsize": lru,
             "hits": 10, "misses": lru},
            {"kind": "cycles", "collected": collected},
            {"kind": "path", "type": "app.session.Session",
             "path": ["app.session.Session.registry", "list", "app.session.Session"]},
        ],
    }


def write(name, doc):
    data = json.dumps(doc, separators=(",", ":")).encode()
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(gzip.compress(data, mtime=0))


write("before.snap", snapshot(1000, 10, 100, 1, "warm", 4242, 0))
write("after.snap", snapshot(3000, 10010, 300, 2, "", 4250, 200))
write("middle.snap", snapshot(2000, 5010, 200, 1, "", 4246, 100))
# The next release, checked out elsewhere, with code added above login()
# and leaking twice as much: graded matching must pair its sites with
# before.snap's instead of reporting them gone and new.
write("moved.snap", snapshot(5000, 10010, 300, 2, "", 4260, 0, root="/ci/build-1.1", shift=5))
