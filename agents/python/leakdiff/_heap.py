"""The object census and the leak hints.

Everything here avoids running code of the program being traced where it
can: type names, flags and dictionaries are read through the descriptors of
``type`` itself (a metaclass cannot intercept them), containers are measured
with the length of their built-in base class, and isinstance() is never
called on arbitrary objects (it may consult a proxy's ``__class__``).
"""

import gc
import sys
import time
from itertools import chain, compress, filterfalse, repeat
from _operator import add as _add, eq as _eq, ne as _ne, is_ as _is, is_not as _is_not
from _operator import not_ as _not, attrgetter

try:
    from _bisect import bisect_left, bisect_right
except ImportError:  # pragma: no cover
    from bisect import bisect_left, bisect_right
from sys import getrefcount

try:
    from _collections import deque
except ImportError:  # pragma: no cover
    from collections import deque


class _Probe:
    def method(self):
        return None


# The types module would be one more import into the traced program.
FunctionType = type(_Probe.method)
MethodType = type(_Probe().method)
ModuleType = type(sys)
FrameType = type(sys._getframe())

_get_module = type.__dict__["__module__"].__get__
_get_qualname = type.__dict__["__qualname__"].__get__
_get_mro = type.__dict__["__mro__"].__get__
_get_tdict = type.__dict__["__dict__"].__get__
_get_flags = type.__dict__["__flags__"].__get__
_module_dict = ModuleType.__dict__["__dict__"].__get__

_HEAPTYPE = 1 << 9
_HAVE_GC = 1 << 14
_MANAGED_DICT = 1 << 4  # only meaningful on 3.11, see tracebacks_getter()

_CONTAINER_BASES = (dict, list, set, frozenset, deque)
_PLAIN_CONTAINERS = (dict, list, tuple, set, frozenset)
_ATOMS = frozenset((str, bytes, int, float, bool, complex, type(None)))
# Types whose equality is their value and whose hash runs no Python code.
_VALUE_TYPES = _ATOMS
_is_value_type = _VALUE_TYPES.__contains__
_CELL = type((lambda x: lambda: x)(0).__closure__[0])
_C_METHODS = frozenset((
    type(object.__dict__["__sizeof__"]),   # method_descriptor
    type(object.__dict__["__init__"]),     # wrapper_descriptor
    type(len),                             # builtin_function_or_method
))
_GC_HEAD = sys.getsizeof([]) - [].__sizeof__()

# Work limits.
# Looking up the allocation traceback of one object costs ~20 us (tracemalloc
# traces the ~2 * depth tuples and ints the lookup returns), hence budgets.
LOOKUP_BUDGET = 25000           # allocation lookups per snapshot, in all
USER_TYPE_LOOKUPS = 5000        # most lookups for one type of the program
OTHER_TYPE_LOOKUPS = 500        # most lookups for one of the TOP_TYPES others
TOP_TYPES = 20                  # most numerous types also traced back
CONTAINER_HINTS = 2000          # most container hints
STDLIB_CONTAINER_MIN = 1000     # stdlib globals reported from this length
PATH_TYPES = 3                  # user types that get a retention path
PATH_DEPTH = 8
PATH_NODES = 20000
PATH_FANOUT = 1000              # children queued per expanded object
PATH_SECONDS = 0.5
BATCH = 4096


# -- containers for the agent's own state ------------------------------------------
#
# The census leaves out every object whose class is defined in the agent, and
# does not look inside them.  So whatever the agent keeps between snapshots
# lives in instances of these subclasses (or of other agent classes with
# __slots__), or in tuples and dicts of atoms, which the collector untracks.

class Map(dict):
    __slots__ = ()


class Seq(list):
    __slots__ = ()


class Names(frozenset):
    __slots__ = ()


# -- names ---------------------------------------------------------------

def type_name(t):
    """"module.QualName", or the bare name for builtins."""
    try:
        mod = _get_module(t)
        qual = _get_qualname(t)
    except Exception:
        return "?"
    if not isinstance(qual, str):
        qual = "?"
    if not isinstance(mod, str) or not mod:
        return qual
    if mod == "builtins":
        return qual
    return mod + "." + qual


def type_module(t):
    try:
        mod = _get_module(t)
    except Exception:
        return ""
    return mod if isinstance(mod, str) else ""


class ModuleKinds:
    """Tells standard-library modules from the program's own."""

    __slots__ = ("names", "prefixes", "agent_modules", "cache")

    def __init__(self, stdlib_prefixes, agent_modules):
        self.names = getattr(sys, "stdlib_module_names", None)
        self.prefixes = stdlib_prefixes     # made once by the agent
        self.agent_modules = agent_modules
        self.cache = Map()

    def is_agent(self, modname):
        top = modname.partition(".")[0]
        return top == "leakdiff" or modname in self.agent_modules

    def is_stdlib(self, modname):
        hit = self.cache.get(modname)
        if hit is not None:
            return hit
        hit = self._classify(modname)
        self.cache[modname] = hit
        return hit

    def _classify(self, modname):
        top = modname.partition(".")[0]
        if top in ("builtins", "_frozen_importlib", "_frozen_importlib_external"):
            return True
        if self.names is not None:
            return top in self.names
        if top in sys.builtin_module_names:
            return True
        mod = sys.modules.get(modname) or sys.modules.get(top)
        if mod is None or not issubclass(type(mod), ModuleType):
            return False
        try:
            path = _module_dict(mod).get("__file__")
        except Exception:
            return False
        if not isinstance(path, str):
            return False
        if "site-packages" in path or "dist-packages" in path:
            return False
        return path.startswith(self.prefixes)

    def is_user(self, modname):
        return bool(modname) and not self.is_stdlib(modname) and not self.is_agent(modname)

    def is_agent_type(self, t):
        return self.is_agent(type_module(t))


class Namer:
    """Type names, cached for one snapshot."""

    __slots__ = ("cache",)

    def __init__(self):
        self.cache = Map()

    def __call__(self, t):
        try:
            name = self.cache.get(t)
            if name is None:
                name = self.cache[t] = type_name(t)
            return name
        except Exception:       # a metaclass whose __hash__ fails
            return type_name(t)


# -- sizes ---------------------------------------------------------------

def _safe_sizeof(obj):
    """Shallow size without calling a __sizeof__ written in Python."""
    try:
        size = object.__sizeof__(obj)
    except Exception:
        return 0
    if _get_flags(type(obj)) & _HAVE_GC:
        size += _GC_HEAD
    return size


# -- sizes of whole groups -------------------------------------------------------

_OBJECT_SIZEOF = object.__dict__["__sizeof__"]
_getsizeof = sys.getsizeof


def _lookup(t, name):
    """The attribute ``name`` as found on t's MRO (no descriptor call)."""
    try:
        for klass in _get_mro(t):
            d = _get_tdict(klass)
            if name in d:
                return d[name]
    except Exception:
        pass
    return None


_TUPLE_LEN = tuple.__dict__["__len__"]


def _sizeof_owner(t):
    """The __sizeof__ implementation instances of t use, or None."""
    return _lookup(t, "__sizeof__")


def _samples(group):
    n = len(group)
    return (group[0], group[n // 2], group[-1]) if n else ()


def _int_bytes(group):
    """Total getsizeof of exact ints, by counting digits, not calling it."""
    bits = Seq(map(int.bit_length, group))
    bits.sort()
    per_digit = sys.int_info.bits_per_digit
    total = _getsizeof(0) * bisect_right(bits, 0)
    low = 1
    while low <= (bits[-1] if bits else 0):
        high = low + per_digit - 1
        count = bisect_right(bits, high) - bisect_left(bits, low)
        if count:
            total += count * _getsizeof(1 << (low - 1))
        low = high + 1
    return total


def _group_bytes(t, group):
    """(total bytes, constant size or None) of all objects in ``group``.

    The result is what summing sys.getsizeof() over the group gives, but it
    is computed without sys.getsizeof() on every object: that makes a bound
    method and an int per call, both traced by tracemalloc.  Instead the
    type's own C __sizeof__ is mapped over the group (plus the constant
    getsizeof adds for the GC header), or, for the commonest types, sizes
    come from a per-type constant or from lengths.  Every shortcut is
    checked against sys.getsizeof() on a few samples first.
    """
    n = len(group)
    if not n:
        return 0, None
    owner = _sizeof_owner(t)
    if type(owner) not in _C_METHODS:
        sizes = _sizes_slowly(group, _safe_sizeof)
        return sum(sizes), None
    samples = _samples(group)
    try:
        if owner is _OBJECT_SIZEOF:
            itemsize = t.__itemsize__ if isinstance(t.__itemsize__, int) else -1
            if itemsize == 0:
                size = _getsizeof(group[0])
                if all(_getsizeof(x) == size for x in samples):
                    return size * n, size
            elif itemsize > 0 and issubclass(t, tuple) and \
                    _lookup(t, "__len__") is _TUPLE_LEN:
                # len() reaches tuple's own C slot: no Python code runs.
                x = group[0]
                base = _getsizeof(x) - itemsize * len(x)
                if all(_getsizeof(y) == base + itemsize * len(y) for y in samples):
                    return base * n + itemsize * sum(map(len, group)), None
        elif t is str:
            empty = _getsizeof("")
            ascii_ = Seq(compress(group, map(str.isascii, group)))
            if all(_getsizeof(x) == empty + len(x) for x in _samples(ascii_)):
                total = empty * len(ascii_) + sum(map(len, ascii_))
                del ascii_
                rest = Seq(filterfalse(str.isascii, group))
                return total + _mapped_bytes(owner, rest), None
        elif t is bytes:
            empty = _getsizeof(b"")
            if all(_getsizeof(x) == empty + len(x) for x in samples):
                return empty * n + sum(map(len, group)), None
        elif t is int:
            if all(_getsizeof(x) == _int_bytes((x,)) for x in samples):
                return _int_bytes(group), None
        return _mapped_bytes(owner, group), None
    except Exception:
        sizes = _sizes_slowly(group, _getsizeof)
        return sum(sizes), None


def _mapped_bytes(owner, group):
    """sum(getsizeof(x) for x in group) via the C __sizeof__ ``owner``."""
    if not group:
        return 0
    extra = None
    for x in _samples(group):
        gap = _getsizeof(x) - owner(x)
        if extra is None:
            extra = gap
        elif gap != extra:
            return sum(map(_getsizeof, group))
    return sum(map(owner, group)) + extra * len(group)


def _sizes_slowly(group, sizer):
    sizes = Seq()
    for obj in group:
        try:
            sizes.append(sizer(obj))
        except Exception:
            sizes.append(0)
    return sizes


def sizes_of(t, group):
    """Per-object sizes for the type_sites of t (only chosen types)."""
    owner = _sizeof_owner(t)
    sizer = _getsizeof if type(owner) in _C_METHODS else _safe_sizeof
    try:
        if sizer is _getsizeof and group:
            extra = _getsizeof(group[0]) - owner(group[0])
            if all(_getsizeof(x) - owner(x) == extra for x in _samples(group)):
                return Seq(map(_add, map(owner, group), repeat(extra)))
        return Seq(map(sizer, group))
    except Exception:
        return _sizes_slowly(group, sizer)


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
            level = Seq(filterfalse(_is_atom, found))
            del found
        del level, by_value, by_id
        if lap is not None:
            lap("census.untracked")

        for t, group in groups.items():
            total, const = _group_bytes(t, group)
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


class CCensus:
    """Census's twin on the _census extension: the same objects, counts
    and sizes (and the same instances sampled), with the walk done in C.

    The C census holds the objects until release(). Sizes are summed from
    per-type facts the extension gathers (lengths, allocated slots, digit
    counts), each formula checked first against sys.getsizeof() on the same
    three instances the pure-Python census checks; a type no shortcut fits
    goes through _group_bytes() on all its instances, as in Census.
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
            total, const = _c_group_bytes(c, self.mod, t, n)
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


_LIST_SIZEOF = list.__dict__["__sizeof__"]
_get_itemsize = type.__dict__["__itemsize__"].__get__
_PTR = _getsizeof([None]) - _getsizeof([])


def _c_group_bytes(c, mod, t, n):
    """What _group_bytes(t, instances) returns, from the C census c."""
    owner = _sizeof_owner(t)
    if type(owner) in _C_METHODS:
        try:
            hit = _c_shortcut(c, mod, t, n, owner)
        except Exception:
            hit = None
        if hit is not None:
            return hit
    return _group_bytes(t, c.sample(t, 0))


def _c_linear(c, mod, t, n, samples, kind, unit):
    """Sizes that are a constant plus ``unit`` times the measure ``kind``."""
    total = c.facts(t, kind)
    if total is None or not samples:
        return None
    measure = mod.measure
    base = _getsizeof(samples[0]) - unit * measure(samples[0], kind)
    if all(_getsizeof(x) == base + unit * measure(x, kind) for x in samples):
        return base * n + unit * total, None
    return None


def _c_shortcut(c, mod, t, n, owner):
    samples = c.samples(t)
    if owner is _OBJECT_SIZEOF:
        itemsize = _get_itemsize(t)
        if itemsize == 0:
            size = _getsizeof(samples[0])
            if all(_getsizeof(x) == size for x in samples):
                return size * n, size
            return None
        if itemsize > 0:
            return _c_linear(c, mod, t, n, samples, mod.VAR, itemsize)
        return None
    if owner is _LIST_SIZEOF:
        return _c_linear(c, mod, t, n, samples, mod.LIST, _PTR)
    if t is str:
        count, length, rest = c.facts(t, mod.STR)
        plain = [x for x in samples if mod.measure(x, mod.STR) >= 0]
        if count and not plain:
            return None
        empty = _getsizeof("")
        if all(_getsizeof(x) == empty + len(x) for x in plain):
            return empty * count + length + _mapped_bytes(owner, rest), None
        return None
    if t is int:
        by_digits = c.facts(t, mod.INT)
        if by_digits is None:
            return None
        per = sys.int_info.bits_per_digit
        sizes = Map()
        for d in by_digits:
            sizes[d] = _getsizeof(1 << (d * per - 1)) if d else _getsizeof(0)
        for x in samples:
            if _getsizeof(x) != sizes.get(mod.measure(x, mod.INT)):
                return None
        return sum(count * sizes[d] for d, count in by_digits.items()), None
    return None


def _atom_type(t):
    """t is one of _ATOMS.  A class whose metaclass is not exactly type is
    never one, and is not hashed (its metaclass might define __hash__)."""
    return type(t) is type and t in _ATOMS


def _is_atom(obj):
    return _atom_type(type(obj))


# -- type x site ---------------------------------------------------------------

def tracebacks_getter(t, plain_getter, by_address):
    """The function returning the raw allocation traceback of a t instance.

    CPython 3.11 puts two hidden pointers in front of objects whose class
    keeps its attribute dict "managed"; its _get_object_traceback does not
    know and finds nothing (python/cpython#101430, fixed in 3.12).  There
    the allocation is looked up at its real start through the C API.
    """
    if by_address is not None:
        flags = _get_flags(t)
        if flags & _MANAGED_DICT:
            pre = (_GC_HEAD if flags & _HAVE_GC else 0) + 2 * by_address[1]
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


# -- hints -----------------------------------------------------------------------

def container_length(value):
    """(type, len) when value is one of the reported containers, else None."""
    t = type(value)
    for base in _CONTAINER_BASES:
        if t is base or issubclass(t, base):
            try:
                return t, base.__len__(value)
            except Exception:
                return None
    return None


def module_namespaces(kinds):
    """(name, dict, is_user) for every module in sys.modules, user first."""
    user, std = [], []
    for name, mod in list(sys.modules.items()):
        if not isinstance(name, str) or mod is None:
            continue
        if not issubclass(type(mod), ModuleType):
            continue
        if kinds.is_agent(name):
            continue
        try:
            ns = _module_dict(mod)
        except Exception:
            continue
        if type(ns) is not dict:
            continue
        if kinds.is_stdlib(name):
            std.append((name, ns, False))
        else:
            user.append((name, ns, True))
    return user + std


def _own_classes(modname, ns):
    """Classes defined in module ``modname`` (and nested ones), with prefix."""
    out = []
    for value in list(ns.values()):
        t = type(value)
        if not issubclass(t, type):
            continue
        if type_module(value) != modname:
            continue
        out.append(value)
    stack = list(out)
    seen = set(map(id, out))
    while stack:
        klass = stack.pop()
        try:
            qual = _get_qualname(klass)
            items = list(_get_tdict(klass).values())
        except Exception:
            continue
        for value in items:
            if issubclass(type(value), type) and id(value) not in seen:
                try:
                    inner = _get_qualname(value)
                except Exception:
                    continue
                if type_module(value) == modname and isinstance(inner, str) \
                        and inner.startswith(qual + "."):
                    seen.add(id(value))
                    out.append(value)
                    stack.append(value)
    return out


def roots(namespaces):
    """Yield (prefix, key, value, is_user) for module globals and class
    attributes; the root's name is prefix + "." + key (built only when
    needed: every string made during a snapshot costs a traced allocation).
    """
    for modname, ns, is_user in namespaces:
        try:
            items = Seq(ns.items())
        except Exception:
            continue
        for key, value in items:
            if type(key) is str and not (key[:2] == "__" and key[-2:] == "__"):
                yield modname, key, value, is_user
        if not is_user:
            continue
        for klass in _own_classes(modname, ns):
            try:
                prefix = modname + "." + _get_qualname(klass)
                items = Seq(_get_tdict(klass).items())
            except Exception:
                continue
            for key, value in items:
                if type(key) is str and not (key[:2] == "__" and key[-2:] == "__"):
                    yield prefix, key, value, True


def container_hints(namespaces, names):
    hints = Seq()
    for prefix, key, value, is_user in roots(namespaces):
        if _atom_type(type(value)):
            continue
        hit = container_length(value)
        if hit is None:
            continue
        t, length = hit
        if length < 1 or (not is_user and length < STDLIB_CONTAINER_MIN):
            continue
        hints.append((is_user, length, prefix + "." + key, names(t)))
    hints.sort(key=lambda h: (not h[0], -h[1], h[2]))
    return [
        {"kind": "container", "name": root, "type": tname, "length": length}
        for _u, length, root, tname in hints[:CONTAINER_HINTS]
    ]


def lru_hints(wrappers):
    out = Seq()
    for w in wrappers:
        try:
            info = w.cache_info()
            mod = getattr(w, "__module__", None)
            qual = getattr(w, "__qualname__", None) or getattr(w, "__name__", None)
            name = "%s.%s" % (mod, qual) if isinstance(mod, str) and mod else str(qual)
            hits, misses, maxsize, currsize = info[0], info[1], info[2], info[3]
            out.append({
                "kind": "lru_cache", "name": name,
                "maxsize": maxsize if type(maxsize) is int else None,
                "currsize": int(currsize), "hits": int(hits), "misses": int(misses),
            })
        except Exception:
            continue
    out.sort(key=lambda h: (-h["currsize"], h["name"]))
    return out


def garbage_hints(names):
    counts = Map()
    for obj in Seq(gc.garbage):
        name = names(type(obj))
        counts[name] = counts.get(name, 0) + 1
    return [{"kind": "garbage", "type": n, "count": c} for n, c in sorted(counts.items())]


# -- retention paths ----------------------------------------------------------------

def _plain_instance(t):
    """An instance of a class of the program whose dict we look through."""
    try:
        if not _get_flags(t) & _HEAPTYPE:
            return False
    except Exception:
        return False
    return not issubclass(t, _CONTAINER_BASES + (tuple, type, ModuleType))


def _children(obj, skip):
    t = type(obj)
    if _atom_type(t) or id(obj) in skip:
        return ()
    if type_module(t).startswith("leakdiff"):
        return ()
    if issubclass(t, (type, ModuleType)) or t is FrameType:
        return ()
    if t is FunctionType:
        out = []
        for part in (obj.__closure__, obj.__defaults__):
            if part:
                out.extend(part)
        if obj.__kwdefaults__:
            out.extend(obj.__kwdefaults__.values())
        return out
    if t is MethodType:
        return (obj.__self__, obj.__func__)
    if not gc.is_tracked(obj) and t not in _PLAIN_CONTAINERS and t is not _CELL:
        # Untracked non-containers (code, builtin functions, ...) hold
        # nothing that can keep an instance of a program class alive.
        return ()
    return gc.get_referents(obj)


def retention_paths(namespaces, targets, skip, names, deadline):
    """Breadth-first search from roots to one instance of each target type.

    ``targets`` is a set of types; returns {type: [path strings]}.  Roots of
    the program's modules are searched first, then the standard library's.
    At most PATH_NODES objects are queued for expansion and the search stops
    at ``deadline``; the children of an expanded object are always checked
    for targets (a cheap type test), so a big container near a root does
    not hide the instances right behind it.
    """
    found = Map()
    # A tuple, not a set: "in" compares identity first and hashes nothing.
    want = tuple(targets)
    visited = set()
    for user_pass in (True, False):
        if not want or time.perf_counter() > deadline:
            break
        parent = Map()   # id(obj) -> (parent id or None, root, obj, shown)
        level = Seq()
        for prefix, key, value, is_user in roots(namespaces):
            if is_user != user_pass or _atom_type(type(value)):
                continue
            k = id(value)
            if k in visited or k in skip:
                continue
            visited.add(k)
            parent[k] = (None, (prefix, key), value, True)
            t = type(value)
            if t in want:
                found[t] = _path_of(parent, k, names)
                want = _without(want, t)
            level.append(value)
        depth = 0
        room = len(visited) < PATH_NODES
        while level and want and depth < PATH_DEPTH:
            nxt = Seq()
            for obj in level:
                if time.perf_counter() > deadline:
                    want = ()
                    break
                try:
                    kids = _children(obj, skip)
                except Exception:
                    continue
                look_through = _plain_instance(type(obj))
                pid = id(obj)
                # No counters in here: under tracemalloc every int above
                # 256 is a traced allocation.  Time and room are checked
                # once per chunk of children.
                for start in range(0, len(kids), PATH_FANOUT):
                    if start and time.perf_counter() > deadline:
                        want = ()
                        break
                    if start:
                        # Past the first PATH_FANOUT children only look for
                        # targets: a sample path needs no more of them.
                        for kid in kids[start:start + PATH_FANOUT]:
                            t = type(kid)
                            if t in want:
                                want = _reached(parent, found, want, pid, kid, t, names)
                        if not want:
                            break
                        continue
                    for kid in kids[:PATH_FANOUT]:
                        t = type(kid)
                        if t in want:
                            want = _reached(parent, found, want, pid, kid, t, names)
                            continue
                        if not room or _atom_type(t):
                            continue
                        k = id(kid)
                        if k in visited or k in skip:
                            continue
                        visited.add(k)
                        parent[k] = (pid, None, kid, not (look_through and t is dict))
                        nxt.append(kid)
                    room = len(visited) < PATH_NODES
                if not want:
                    break
            level = nxt
            depth += 1
        del parent, level
    return found


def add_counts(merged, key, count, size):
    """Adds count and size to merged[key], a [count, size] pair."""
    prev = merged.get(key)
    if prev is None:
        merged[key] = [count, size]
    else:
        prev[0] += count
        prev[1] += size


def _reached(parent, found, want, pid, kid, t, names):
    """Records the path to kid, an instance of a wanted type t; returns what
    is still wanted."""
    k = id(kid)
    parent[k] = (pid, None, kid, True)
    found[t] = _path_of(parent, k, names)
    return _without(want, t)


def _without(items, item):
    return tuple(x for x in items if x is not item)


def _path_of(parent, key, names):
    """The path strings from the root down to the object ``key``."""
    steps = []
    while key is not None:
        up, root, obj, shown = parent[key]
        if shown:
            steps.append(names(type(obj)))
        if root is not None:
            steps.append(root[0] + "." + root[1])
        key = up
    steps.reverse()
    return steps
