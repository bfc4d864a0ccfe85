#!/usr/bin/env python3
"""The agent keeps its state out of its own census (see _containers.py).

The census counts the program's objects by type and leaves out those of
the agent's classes; a plain dict, list or set the agent holds is counted
as the program's, and one the agent adds or grows per snapshot looks like
a leak of the program. Two checks, on an agent built in this process:

- the agent's state, walked from the globals of its modules and from the
  Agent instance, holds no plain mutable container where the census can
  count it;
- snapshots taken back to back, with nothing happening in between, count
  the same built-in containers, of the same total size.

Runs under the interpreter the extensions are built for; LEAKDIFF_EXT_DIR
names their directory (without it, the C census is not tried).
"""
import gc
import json
import os
import sys
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.SOURCE, "agents", "python"))
from leakdiff import _agent, _containers, _typeinfo  # noqa: E402

import unittest  # noqa: E402

try:
    from _collections import deque
except ImportError:  # pragma: no cover
    from collections import deque

EXT = _agent.load_extension(os.environ.get("LEAKDIFF_EXT_DIR"), "_census")

# Containers whose count or size can change while the agent holds them.
MUTABLE = (dict, list, set, bytearray, deque)
# The built-in containers a leak report is most often about.
WATCHED = ("dict", "list", "set", "frozenset", "tuple", "bytearray", "collections.deque")


def is_agent_class(t):
    return _typeinfo.type_module(t).startswith("leakdiff")


def make_agent(census_ext):
    """An Agent as start() makes it, without the pipe: _build() makes the
    document the same way and only request() would write it."""
    agent = _agent.Agent(None, _agent.DEFAULT_DEPTH, None, None)
    agent.census_ext = census_ext
    return agent


def snapshot_rows(agent, seq):
    """{type name: Seq([count, bytes])} of the WATCHED types in a snapshot.

    Kept in the agent's own containers (the ints in them are untracked), so
    that what one snapshot reports does not show up in the next."""
    doc = json.loads(agent._build(seq, "", "api"))
    strings = doc["strings"]
    rows = _containers.Map()
    for row in doc["types"]:
        ix, count, size = row[:3]      # a fourth element is the type's origin
        if strings[ix] in WATCHED:
            rows[strings[ix]] = _containers.Seq((count, size))
    del doc, strings
    return rows


class StateWalk:
    """Finds the plain mutable containers in the agent's state that the
    census would count.

    A module's dict is a plain dict, counted, and the census looks into
    what it counts: a global is exposed, and so is what an exposed or
    tracked tuple, function or class holds. What only agent objects hold
    is counted only when the collector tracks it (a dict of atoms is
    untracked; a list never is)."""

    def __init__(self):
        self.exposed = _containers.Map()   # id -> exposed when visited
        self.problems = _containers.Seq()
        self.keep = _containers.Seq()      # visited objects stay alive: ids stay unique

    def modules(self):
        for name, mod in sorted(sys.modules.items()):
            if not (name == "leakdiff" or name.startswith("leakdiff.")) or mod is None:
                continue
            for key, value in sorted(vars(mod).items()):
                # The import system's own (__path__, __all__...): not agent state.
                if not (key.startswith("__") and key.endswith("__")):
                    self.visit(value, name + "." + key, True)

    def visit(self, obj, where, exposed):
        t = type(obj)
        if _typeinfo.atom_type(t):
            return
        before = self.exposed.get(id(obj))
        if before is not None and (before or not exposed):
            return
        self.exposed[id(obj)] = exposed
        self.keep.append(obj)
        if isinstance(obj, type):
            if is_agent_class(obj):
                for key, value in vars(obj).items():
                    if not (key.startswith("__") and key.endswith("__")):
                        self.visit(value, where + "." + key, True)
            return
        if is_agent_class(t):
            self.agent_object(obj, t, where)
            return
        inner = exposed or gc.is_tracked(obj)
        if t is _typeinfo.FunctionType:
            if str(getattr(obj, "__module__", "")).startswith("leakdiff"):
                for i, value in enumerate(obj.__defaults__ or ()):
                    self.visit(value, "%s(default %d)" % (where, i), True)
                for key, value in (obj.__kwdefaults__ or {}).items():
                    self.visit(value, "%s(default %s)" % (where, key), True)
                for i, cell in enumerate(obj.__closure__ or ()):
                    try:
                        value = cell.cell_contents
                    except ValueError:
                        continue
                    self.visit(value, "%s(closure %d)" % (where, i), True)
        elif t is _typeinfo.MethodType:
            self.visit(obj.__self__, where + ".__self__", exposed)
        elif isinstance(obj, (tuple, frozenset)):
            for i, value in enumerate(obj):
                self.visit(value, "%s[%d]" % (where, i), inner)
        elif isinstance(obj, MUTABLE):
            if inner:
                self.problems.append("%s is a plain %s" % (where, _typeinfo.type_name(t)))

    def agent_object(self, obj, t, where):
        """An object of an agent class: the census leaves it out and does
        not look into it, but whatever it holds that is tracked is counted."""
        try:
            object.__getattribute__(obj, "__dict__")
            self.problems.append("%s, a %s, has an instance dict (give the class __slots__)"
                                 % (where, _typeinfo.type_name(t)))
        except AttributeError:
            pass
        if isinstance(obj, dict):
            for key, value in list(obj.items()):
                self.visit(key, "%s key %r" % (where, key), False)
                self.visit(value, "%s[%r]" % (where, key), False)
        elif isinstance(obj, (list, frozenset, tuple)):
            for i, value in enumerate(list(obj)):
                self.visit(value, "%s[%d]" % (where, i), False)
        for klass in t.__mro__:
            slots = vars(klass).get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                try:
                    value = vars(klass)[name].__get__(obj, klass)
                except (AttributeError, KeyError):
                    continue
                self.visit(value, where + "." + name, False)


class AgentState(unittest.TestCase):
    def agents(self):
        """(what, agent) for the pure-Python census and, when it loads,
        the C one; each has taken snapshots, so lazily made state is there."""
        out = [("python census", make_agent(None))]
        if EXT is not None:
            out.append(("C census", make_agent(EXT)))
        for _what, agent in out:
            for seq in (1, 2):
                snapshot_rows(agent, seq)
        return out

    def test_no_plain_mutable_containers_in_agent_state(self):
        for what, agent in self.agents():
            with self.subTest(census=what):
                gc.collect()    # untracks the tuples and dicts of atoms
                walk = StateWalk()
                walk.modules()
                walk.visit(agent, "the Agent", False)
                self.assertEqual(list(walk.problems), [])
                # The walk does reach the state it is about.
                self.assertIn(id(agent.builder.notes), walk.exposed)
                self.assertIn(id(_agent._JOBS), walk.exposed)

    def test_back_to_back_snapshots_count_the_same_containers(self):
        for what, agent in self.agents():
            for tracing in (False, True):
                if tracing and tracemalloc.is_tracing():
                    continue
                with self.subTest(census=what, tracemalloc=tracing):
                    if tracing:
                        agent.tm.start(agent.depth)
                    try:
                        seen = _containers.Seq()
                        for seq in range(3, 6):
                            seen.append(snapshot_rows(agent, seq))
                    finally:
                        if tracing:
                            agent.tm.stop()
                    # The first of these may still settle state made lazily
                    # (the first traced snapshot's); the other two must agree.
                    self.assertEqual(dict(seen[2]), dict(seen[1]))
                    self.assertGreater(seen[1]["dict"][0], 0)


if __name__ == "__main__":
    harness.main()
