"""The object census: every live object of the process, grouped by type.

The objects the collector tracks come from gc.get_objects(); the untracked
ones (str, int, ... and containers the collector stopped tracking) are
found through what the tracked ones and the threads' frames refer to.
Objects of the agent's own classes are left out, and so are the untracked
objects only they refer to (see _containers.py).  Census does it in
Python, CCensus with the _census extension; sizes come from _sizes.py.
Then the instances of the chosen types are grouped by the traceback that
allocated them (type x site).
"""

import gc
import sys
from itertools import chain, compress, filterfalse, repeat
from _operator import eq as _eq, ne as _ne, is_ as _is, is_not as _is_not
from _operator import not_ as _not, attrgetter
from sys import getrefcount

from ._containers import Map, Seq
from ._sizes import c_group_bytes, group_bytes, sizes_of
from ._typeinfo import ATOMS, GC_HEAD, HAVE_GC, FrameType, get_flags, is_atom, type_name

# Work limits.
# Looking up the allocation traceback of one object costs ~20 us (tracemalloc
# traces the ~2 * depth tuples and ints the lookup returns), hence budgets.
LOOKUP_BUDGET = 25000           # allocation lookups per snapshot, in all
USER_TYPE_LOOKUPS = 5000        # most lookups for one type of the program
OTHER_TYPE_LOOKUPS = 500        # most lookups for one of the TOP_TYPES others
TOP_TYPES = 20                  # most numerous types also traced back
BATCH = 4096                    # objects per gc.get_referents() call

_MANAGED_DICT = 1 << 4  # only meaningful on 3.11, see tracebacks_getter()

# Types whose equality is their value and whose hash runs no Python code.
_VALUE_TYPES = ATOMS
_is_value_type = _VALUE_TYPES.__contains__


# -- walking the heap ---------------------------------------------------------

def thread_frames(agent_files):
    """Frames of all threads except the agent's own."""
    out = Seq()
    try:
        tops = Seq(sys._current_frames().values())
    except Exception:
        return out
    seen = Map()
    for frame in tops:
        while frame is not None and id(frame) not in seen:
            seen[id(frame)] = True
            try:
                if frame.f_code.co_filename not in agent_files:
                    out.append(frame)
                frame = frame.f_back
            except Exception:
                break
    # tops holds this very frame: clear it so no reference cycle is left.
    del tops[:]
    return out


def _program_frames(frames, agent_files):
    return [f for f in frames if f.f_code.co_filename not in agent_files]


def _new_frames(roots, known):
    ids = set(map(id, known))
    return Seq([f for f in roots if id(f) not in ids])


def _probe_value():
    return float("0.5")


def _untracked_of(batch):
    """Untracked referents of ``batch`` and their reference counts."""
    refs = gc.get_referents(*batch)
    found = Seq(filterfalse(gc.is_tracked, refs))
    del refs
    return found, Seq(map(getrefcount, found))


# Code objects have no tp_traverse, so gc.get_referents() sees nothing in
# them.  Their constants, names and tables are real objects; these are the
# attributes that hold them (not the ones computed on each access, such as
# co_code or co_varnames from 3.11 on, or co_lnotab from 3.10 on).
if sys.version_info >= (3, 11):
    _CODE_ATTRS = ("co_consts", "co_names", "co_filename", "co_name",
                   "co_qualname", "co_linetable", "co_exceptiontable")
elif sys.version_info >= (3, 10):
    _CODE_ATTRS = ("co_code", "co_consts", "co_names", "co_varnames", "co_freevars",
                   "co_cellvars", "co_filename", "co_name", "co_linetable")
else:
    _CODE_ATTRS = ("co_code", "co_consts", "co_names", "co_varnames", "co_freevars",
                   "co_cellvars", "co_filename", "co_name", "co_lnotab")
_code_parts = attrgetter(*_CODE_ATTRS)
_CodeType = type(_probe_value.__code__)


def _untracked_of_codes(codes):
    """Like _untracked_of(), for the parts of code objects."""
    refs = Seq(chain.from_iterable(map(_code_parts, codes)))
    found = Seq(filterfalse(gc.is_tracked, refs))
    del refs
    return found, Seq(map(getrefcount, found))


def _batches(level, codes):
    """(untracked referents, their counts) for ``level`` in batches, then
    for the parts of the code objects in it."""
    for start in range(0, len(level), BATCH):
        yield _untracked_of(level[start:start + BATCH])
    for start in range(0, len(codes), BATCH):
        yield _untracked_of_codes(codes[start:start + BATCH])


def _single_ref_count():
    """What _untracked_of() reports for an object referenced exactly once
    (measured, not assumed: it depends on the interpreter)."""
    holder = Seq((_probe_value(),))
    _found, counts = _untracked_of((holder,))
    return counts[0] if len(counts) == 1 else -1


# -- census -----------------------------------------------------------------

class Census:
    """Live objects grouped by exact type; kept alive until release().

    The work is shaped to allocate little: while tracemalloc traces, every
    allocation of the agent costs a traceback capture.  Objects are appended
    to one list per type, sizes are summed by sum(map(...)), and untracked
    objects are de-duplicated by identity only when they have more than one
    referrer (an object with a single referrer can only be reached once).
    """

    __slots__ = ("groups", "const", "totals", "skipped")

    def __init__(self):
        self.groups = Map()    # type -> Seq of instances
        self.const = Map()     # type -> size shared by all instances, or None
        self.totals = Map()    # type -> (count, bytes)
        self.skipped = 0       # objects whose type cannot be hashed

    def _group(self, objs):
        """Files each object under its type; one loop for a whole batch."""
        groups = self.groups
        for obj in objs:
            t = type(obj)
            try:
                group = groups.get(t)
                if group is None:
                    group = groups[t] = Seq()
            except Exception:
                # A metaclass whose __hash__ fails: leave such objects out
                # rather than lose the snapshot.
                self.skipped += 1
                continue
            group.append(obj)

    def run(self, agent_files, is_agent_type, lap=None):
        groups = self.groups
        objs = gc.get_objects()
        self._group(objs)
        lists = groups.get(list)
        if lists:
            for i, item in enumerate(lists):
                if item is objs:
                    del lists[i]
                    break
        del objs
        # No comprehensions in here: their closures would put cells of
        # this frame among the objects counted.
        frames = groups.get(FrameType)
        if frames:
            frames[:] = _program_frames(frames, agent_files)
        for t in Seq(groups):
            if is_agent_type(t):
                del groups[t]

        if lap is not None:
            lap("census.group")
        # Untracked objects (str, int, ... and containers the collector
        # stopped tracking) reachable from tracked ones, level by level.
        base = _single_ref_count()
        roots = thread_frames(agent_files)
        if frames and roots:
            # A frame that is a tracked object already is looked into once.
            roots = _new_frames(roots, frames)
        level = Seq(chain.from_iterable(groups.values()))
        level.extend(roots)
        del roots
        by_value = Map()
        by_id = set()
        missing = by_value
        while level:
            found = Seq()
            codes = Seq(compress(level, map(_is, map(type, level), repeat(_CodeType))))
            for unt, counts in _batches(level, codes):
                if not unt:
                    continue
                # operator.eq, not base.__eq__: a method-wrapper called by
                # map() builds an argument tuple per call (traced).
                found.extend(compress(unt, map(_eq, counts, repeat(base))))
                multi = Seq(compress(unt, map(_ne, counts, repeat(base))))
                del unt, counts
                if not multi:
                    continue
                # Atoms with several referrers (interned names, small ints,
                # None...) are the bulk: find the ones already counted with
                # C-level passes, and loop in Python over the rest only.
                is_value = Seq(map(_is_value_type, map(type, multi)))
                values = Seq(compress(multi, is_value))
                stored = map(by_value.get, values, repeat(missing))
                for obj in compress(values, map(_is_not, stored, values)):
                    prev = by_value.get(obj, missing)
                    if prev is missing:
                        by_value[obj] = obj
                        found.append(obj)
                    elif prev is not obj:       # equal, but another object
                        key = id(obj)
                        if key not in by_id:
                            by_id.add(key)
                            found.append(obj)
                for obj in compress(multi, map(_not, is_value)):
                    key = id(obj)
                    if key not in by_id:
                        by_id.add(key)
                        found.append(obj)
                del multi, is_value, values, stored
            self._group(found)
            level = Seq(filterfalse(is_atom, found))
            del found
        del level, by_value, by_id
        if lap is not None:
            lap("census.untracked")

        for t, group in groups.items():
            total, const = group_bytes(t, group)
            self.const[t] = const
            self.totals[t] = (len(group), total)

    def sample(self, t, limit):
        """The instances of t, or every k-th one from the first when there
        are more than ``limit`` (k = ceil(count / limit)); None if none."""
        group = self.groups.get(t)
        if not group:
            return None
        n = len(group)
        if 0 < limit < n:
            return group[::-(-n // limit)]
        return group

    def members(self, t):
        return self.sample(t, 0)

    def release(self):
        self.groups.clear()
        self.const.clear()
        self.totals.clear()
        self.skipped = 0

    def by_name(self):
        return _by_name(self.totals)


def _by_name(totals):
    """[(name, count, bytes)], types of equal name merged."""
    merged = Map()
    for t, (count, size) in totals.items():
        name = type_name(t)
        add_counts(merged, name, count, size)
    return [(n, c, b) for n, (c, b) in merged.items()]


def add_counts(merged, key, count, size):
    """Adds count and size to merged[key], a [count, size] pair."""
    prev = merged.get(key)
    if prev is None:
        merged[key] = [count, size]
    else:
        prev[0] += count
        prev[1] += size


class CCensus:
    """Census's twin on the _census extension: the same objects, counts
    and sizes (and the same instances sampled), with the walk done in C.

    The C census holds the objects until release(). Sizes are summed from
    per-type facts the extension gathers (lengths, allocated slots, digit
    counts), each formula checked first against sys.getsizeof() on the same
    three instances the pure-Python census checks; a type no shortcut fits
    goes through group_bytes() on all its instances, as in Census.
    """

    __slots__ = ("mod", "c", "const", "totals", "skipped")

    def __init__(self, mod):
        self.mod = mod
        self.c = None
        self.const = Map()
        self.totals = Map()
        self.skipped = 0

    def run(self, agent_files, is_agent_type, lap=None):
        objs = gc.get_objects()
        if lap is not None:
            lap("census.group")
        roots = thread_frames(agent_files)
        try:
            self.c = c = self.mod.run(objs, roots, agent_files, is_agent_type, _CODE_ATTRS)
        finally:
            del objs, roots[:]
        self.skipped = c.skipped()
        if lap is not None:
            lap("census.untracked")
        for t, n in c.types():
            total, const = c_group_bytes(c, self.mod, t, n)
            self.const[t] = const
            self.totals[t] = (n, total)

    def sample(self, t, limit):
        try:
            return self.c.sample(t, limit)
        except (KeyError, TypeError, AttributeError):
            return None

    def members(self, t):
        return self.sample(t, 0)

    def release(self):
        c, self.c = self.c, None
        if c is not None:
            c.release()
        self.const.clear()
        self.totals.clear()
        self.skipped = 0

    def by_name(self):
        return _by_name(self.totals)


# -- type x site ---------------------------------------------------------------

def tracebacks_getter(t, plain_getter, by_address):
    """The function returning the raw allocation traceback of a t instance.

    CPython 3.11 puts two hidden pointers in front of objects whose class
    keeps its attribute dict "managed"; its _get_object_traceback does not
    know and finds nothing (python/cpython#101430, fixed in 3.12).  There
    the allocation is looked up at its real start through the C API.
    """
    if by_address is not None:
        flags = get_flags(t)
        if flags & _MANAGED_DICT:
            pre = (GC_HEAD if flags & HAVE_GC else 0) + 2 * by_address[1]
            lookup = by_address[0]

            def getter(obj, _lookup=lookup, _pre=pre):
                return _lookup(0, id(obj) - _pre)
            return getter
    return plain_getter


def type_sites(census, plan, getter_for):
    """Group instances by allocation traceback.

    ``plan`` is a list of (type, lookups): when lookups is smaller than the
    number of instances, an evenly strided sample of that many instances
    is looked up and every count is scaled to the whole type (see
    Builder._type_sites for why).  Returns a dict (type, frames) ->
    (count, bytes).
    """
    out = Map()
    for t, lookups in plan:
        group = census.sample(t, lookups) if lookups > 0 else None
        if not group:
            continue
        n = census.totals[t][0]
        get = getter_for(t)
        const = census.const.get(t)
        sizes = repeat(const) if const is not None else sizes_of(t, group)
        per_tb = Map()
        # Each traceback is dropped right after use, so the tuples of the
        # next lookup come from the interpreter's free lists.
        for obj, size in zip(group, sizes):
            try:
                tb = get(obj)
            except Exception:
                continue
            if tb:
                hit = per_tb.get(tb)
                if hit is None:
                    per_tb[tb] = Seq((size,))
                else:
                    hit.append(size)
        m = len(group)
        del group, sizes
        for tb, found in per_tb.items():
            count, total = len(found), sum(found)
            if m < n:
                count = max(1, (count * n + m // 2) // m)
                total = count * const if const is not None else (total * n + m // 2) // m
            out[(t, tb)] = (count, total)
        del per_tb
    return out
