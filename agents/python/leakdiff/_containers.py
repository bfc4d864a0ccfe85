"""The container types the agent keeps its own state in.

The census (_objects.py) counts every live object of the process by type,
and ``leakdiff diff`` reports the types that grew.  The agent's objects
live in the same heap as the program's, so the census leaves out every
object whose class is defined in a ``leakdiff`` module, and does not look
inside it.  That is the only thing keeping the agent out of its own
snapshots, hence the rule:

    Whatever the agent holds, between snapshots or while one is taken,
    lives in instances of Map, Seq and Names below, or of other agent
    classes (with __slots__, so that no plain instance dict is made) --
    never in a plain dict, list or set.

A plain container held by the agent is counted as the program's, and an
agent that makes one more per snapshot, or grows one, makes the program
look as if it leaked dicts or lists.  The exceptions are the ones the
census cannot see: tuples and dicts holding only atoms (str, int, None,
...), referenced only from the agent's own objects.  The collector
untracks those, and the census reaches untracked objects only through
objects it counts.  A module global is not such a place: the dict of a
module is an ordinary dict, counted, and so is everything it holds.

tests/python/test_agent_state.py checks the rule on a live agent.
"""


class Map(dict):
    """A dict the census does not count."""

    __slots__ = ()


class Seq(list):
    """A list the census does not count."""

    __slots__ = ()


class Names(frozenset):
    """A frozenset the census does not count."""

    __slots__ = ()
