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
from itertools import chain, compress, filterfalse

try:
    from _bisect import bisect_left, bisect_right
except ImportError:  # pragma: no cover
    from bisect import bisect_left, bisect_right
from sys import getrefcount
from types import FrameType, FunctionType, MethodType, ModuleType

try:
    from _collections import deque
except ImportError:  # pragma: no cover
    from collections import deque

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
TYPE_SITE_LIMIT = 250000        # instances of program types looked up
BUILTIN_SITE_LIMIT = 50000      # instances of other types looked up
TOP_TYPES = 20                  # most numerous types also traced back
CONTAINER_HINTS = 2000          # most container hints
STDLIB_CONTAINER_MIN = 1000     # stdlib globals reported from this length
PATH_TYPES = 3                  # user types that get a retention path
PATH_DEPTH = 8
PATH_NODES = 20000
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

    def __init__(self, stdlib_dirs, agent_modules):
        self.names = getattr(sys, "stdlib_module_names", None)
        self.prefixes = tuple(d.rstrip("/\\") + "/" for d in stdlib_dirs if d)
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
        name = self.cache.get(t)
        if name is None:
            name = self.cache[t] = type_name(t)
        return name


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


def _sizeof_owner(t):
    """The __sizeof__ implementation instances of t use, or None."""
    try:
        for klass in _get_mro(t):
            d = _get_tdict(klass)
            if "__sizeof__" in d:
                return d["__sizeof__"]
    except Exception:
        pass
    return None


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
            elif itemsize > 0 and issubclass(t, tuple):
                x = group[0]
                base = _getsizeof(x) - itemsize * tuple.__len__(x)
                if all(_getsizeof(y) == base + itemsize * tuple.__len__(y) for y in samples):
                    return base * n + itemsize * sum(map(tuple.__len__, group)), None
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
                return Seq(map(extra.__add__, map(owner, group)))
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


def _probe_value():
    return float("0.5")


def _untracked_of(batch):
    """Untracked referents of ``batch`` and their reference counts."""
    refs = gc.get_referents(*batch)
    found = Seq(filterfalse(gc.is_tracked, refs))
    del refs
    return found, Seq(map(getrefcount, found))


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

    __slots__ = ("groups", "const", "totals")

    def __init__(self):
        self.groups = Map()    # type -> Seq of instances
        self.const = Map()     # type -> size shared by all instances, or None
        self.totals = Map()    # type -> (count, bytes)

    def run(self, agent_files, is_agent_type):
        groups = self.groups
        objs = gc.get_objects()
        for obj in objs:
            t = type(obj)
            group = groups.get(t)
            if group is None:
                group = groups[t] = Seq()
            group.append(obj)
        lists = groups.get(list)
        if lists:
            for i, item in enumerate(lists):
                if item is objs:
                    del lists[i]
                    break
        del objs
        frames = groups.get(FrameType)
        if frames:
            frames[:] = [f for f in frames if f.f_code.co_filename not in agent_files]
        for t in Seq(groups):
            if is_agent_type(t):
                del groups[t]

        # Untracked objects (str, int, ... and containers the collector
        # stopped tracking) reachable from tracked ones, level by level.
        base = _single_ref_count()
        roots = thread_frames(agent_files)
        level = Seq(chain.from_iterable(groups.values()))
        level.extend(roots)
        del roots
        by_value = Map()
        by_id = set()
        missing = by_value
        while level:
            found = Seq()
            for start in range(0, len(level), BATCH):
                unt, counts = _untracked_of(level[start:start + BATCH])
                if not unt:
                    continue
                found.extend(compress(unt, map(base.__eq__, counts)))
                for obj in compress(unt, map(base.__ne__, counts)):
                    if type(obj) in _VALUE_TYPES:
                        prev = by_value.get(obj, missing)
                        if prev is missing:
                            by_value[obj] = obj
                            found.append(obj)
                            continue
                        if prev is obj:
                            continue
                    key = id(obj)
                    if key not in by_id:
                        by_id.add(key)
                        found.append(obj)
                del unt, counts
            for obj in found:
                t = type(obj)
                group = groups.get(t)
                if group is None:
                    group = groups[t] = Seq()
                group.append(obj)
            level = Seq(filterfalse(_is_atom, found))
            del found
        del level, by_value, by_id

        for t, group in groups.items():
            total, const = _group_bytes(t, group)
            self.const[t] = const
            self.totals[t] = (len(group), total)

    def release(self):
        self.groups.clear()
        self.const.clear()
        self.totals.clear()

    def by_name(self):
        """[(name, count, bytes)], types of equal name merged."""
        merged = Map()
        for t, (count, size) in self.totals.items():
            name = type_name(t)
            prev = merged.get(name)
            if prev is None:
                merged[name] = [count, size]
            else:
                prev[0] += count
                prev[1] += size
        return [(n, c, b) for n, (c, b) in merged.items()]


def _is_atom(obj):
    return type(obj) in _ATOMS


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


def type_sites(census, types, getter_for):
    """Group the instances of ``types`` by allocation traceback.

    Returns a dict (type, frames) -> [count, bytes].
    """
    out = Map()
    for t in types:
        group = census.groups.get(t)
        if not group:
            continue
        get = getter_for(t)
        try:
            tracebacks = Seq(map(get, group))
        except Exception:
            tracebacks = Seq()
            for obj in group:
                try:
                    tracebacks.append(get(obj))
                except Exception:
                    tracebacks.append(None)
        per_tb = Map()
        const = census.const.get(t)
        if const is not None:
            for tb in tracebacks:
                if tb:
                    hit = per_tb.get(tb)
                    if hit is None:
                        per_tb[tb] = Seq((const,))
                    else:
                        hit.append(const)
        else:
            for tb, size in zip(tracebacks, sizes_of(t, group)):
                if tb:
                    hit = per_tb.get(tb)
                    if hit is None:
                        per_tb[tb] = Seq((size,))
                    else:
                        hit.append(size)
        del tracebacks
        for tb, sizes in per_tb.items():
            out[(t, tb)] = (len(sizes), sum(sizes))
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
        if type(value) in _ATOMS:
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
    if t in _ATOMS or id(obj) in skip:
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

    ``targets`` maps id(type) -> type; returns {id(type): [path strings]}.
    Roots of the program's modules are searched first, then the standard
    library's, within PATH_NODES visited objects and ``deadline``.
    """
    found = Map()
    want = Map(targets)
    visited = set()
    for user_pass in (True, False):
        if not want or time.perf_counter() > deadline or len(visited) > PATH_NODES:
            break
        parent = Map()   # id(obj) -> (parent id or None, root name, obj, shown)
        level = Seq()
        for prefix, key, value, is_user in roots(namespaces):
            if is_user != user_pass or type(value) in _ATOMS:
                continue
            if id(value) in visited or id(value) in skip:
                continue
            visited.add(id(value))
            parent[id(value)] = (None, (prefix, key), value, True)
            tid = id(type(value))
            if tid in want:
                found[tid] = _path_of(parent, id(value), names)
                del want[tid]
            level.append(value)
        depth = 0
        steps = 0
        while level and want and depth < PATH_DEPTH:
            nxt = Seq()
            for obj in level:
                steps += 1
                if steps & 63 == 0 and time.perf_counter() > deadline:
                    nxt = Seq()
                    break
                try:
                    kids = _children(obj, skip)
                except Exception:
                    continue
                look_through = _plain_instance(type(obj))
                for kid in kids:
                    k = id(kid)
                    if k in visited or k in skip:
                        continue
                    visited.add(k)
                    shown = not (look_through and type(kid) is dict)
                    parent[k] = (id(obj), None, kid, shown)
                    tid = id(type(kid))
                    if tid in want:
                        found[tid] = _path_of(parent, k, names)
                        del want[tid]
                    nxt.append(kid)
                if not want or len(visited) > PATH_NODES:
                    nxt = Seq()
                    break
            level = nxt
            depth += 1
        del parent, level
    return found


def _path_of(parent, key, names):
    chain = []
    while key is not None:
        up, root, obj, shown = parent[key]
        if shown:
            chain.append(names(type(obj)))
        if root is not None:
            chain.append(root[0] + "." + root[1])
        key = up
    chain.reverse()
    return chain
