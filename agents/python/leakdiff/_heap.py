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
_CELL = type((lambda x: lambda: x)(0).__closure__[0])
_C_METHODS = frozenset((
    type(object.__dict__["__sizeof__"]),   # method_descriptor
    type(object.__dict__["__init__"]),     # wrapper_descriptor
    type(len),                             # builtin_function_or_method
))
_GC_HEAD = sys.getsizeof([]) - [].__sizeof__()

# Work limits.
TYPE_SITE_LIMIT = 2000000       # instances looked up for type_sites
TOP_TYPES = 20                  # most numerous types also traced back
CONTAINER_HINTS = 2000          # most container hints
STDLIB_CONTAINER_MIN = 1000     # stdlib globals reported from this length
PATH_TYPES = 3                  # user types that get a retention path
PATH_DEPTH = 8
PATH_NODES = 20000
PATH_SECONDS = 0.5
BATCH = 4096


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

    def __init__(self, stdlib_dirs, agent_modules):
        self.names = getattr(sys, "stdlib_module_names", None)
        self.prefixes = tuple(d.rstrip("/\\") + "/" for d in stdlib_dirs if d)
        self.agent_modules = agent_modules
        self.cache = {}

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


def sizer_for(t):
    """sys.getsizeof unless the type overrides __sizeof__ in Python."""
    try:
        for klass in _get_mro(t):
            d = _get_tdict(klass)
            if "__sizeof__" in d:
                if type(d["__sizeof__"]) in _C_METHODS:
                    return sys.getsizeof
                break
    except Exception:
        pass
    return _safe_sizeof


# -- ownership -------------------------------------------------------------

def owned_ids(roots, own_modules):
    """Ids of the tracked containers reachable from the agent's own state.

    Only plain containers and instances of the agent's own classes are
    followed, so nothing of the program is claimed.  Untracked containers
    hold only untracked things and need not be followed.
    """
    out = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in out:
            continue
        t = type(obj)
        if t not in _PLAIN_CONTAINERS and type_module(t) not in own_modules:
            continue
        if not gc.is_tracked(obj):
            continue
        out.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return out


def thread_frames(agent_files):
    """Frames of all threads except the agent's own."""
    out = []
    try:
        tops = list(sys._current_frames().values())
    except Exception:
        return out
    seen = set()
    for frame in tops:
        while frame is not None and id(frame) not in seen:
            seen.add(id(frame))
            try:
                if frame.f_code.co_filename not in agent_files:
                    out.append(frame)
                frame = frame.f_back
            except Exception:
                break
    return out


# -- census -----------------------------------------------------------------

class Census:
    """Counts live objects by type; keeps them alive until released."""

    def __init__(self):
        self.objects = []      # tracked objects (from gc.get_objects)
        self.extra = []        # untracked objects reached from them
        self.acc = {}          # id(type) -> [count, bytes, type, sizer]

    def run(self, exclude_ids, agent_files):
        objs = gc.get_objects()
        exclude_ids.add(id(objs))
        frames = thread_frames(agent_files)
        for f in frames:
            if f.f_code.co_filename in agent_files:
                exclude_ids.add(id(f))
        # Frames of the agent (tracked objects before 3.11).
        frame = sys._getframe()
        while frame is not None:
            if frame.f_code.co_filename in agent_files:
                exclude_ids.add(id(frame))
            frame = frame.f_back
        del frame
        if exclude_ids:
            objs = [o for o in objs if id(o) not in exclude_ids]
        self.objects = objs
        self._count(objs)

        # Untracked objects (str, int, ... and containers the collector
        # stopped tracking) reachable from tracked ones, level by level.
        seen = set(map(id, objs))
        seen |= exclude_ids
        seen.update(map(id, frames))
        level = objs + frames
        extra = self.extra
        while level:
            found = []
            for start in range(0, len(level), BATCH):
                refs = gc.get_referents(*level[start:start + BATCH])
                if not refs:
                    continue
                byid = dict(zip(map(id, refs), refs))
                new = byid.keys() - seen
                if new:
                    seen.update(new)
                    found.extend([byid[k] for k in new])
                del refs, byid
            extra.extend(found)
            level = [o for o in found if type(o) not in _ATOMS]
        del seen, level
        self._count(extra)

    def _count(self, objs):
        acc = self.acc
        for obj in objs:
            t = type(obj)
            entry = acc.get(id(t))
            if entry is None:
                entry = acc[id(t)] = [0, 0, t, sizer_for(t)]
            entry[0] += 1
            try:
                entry[1] += entry[3](obj)
            except Exception:
                pass

    def release(self):
        self.objects = []
        self.extra = []

    def by_name(self):
        """[(name, count, bytes)], types of equal name merged."""
        merged = {}
        for count, size, t, _sizer in self.acc.values():
            name = type_name(t)
            prev = merged.get(name)
            if prev is None:
                merged[name] = [count, size]
            else:
                prev[0] += count
                prev[1] += size
        return [(n, c, b) for n, (c, b) in merged.items()]


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


def type_sites(census, selected, getter_for, limit=TYPE_SITE_LIMIT):
    """Group instances of the selected types by allocation traceback.

    ``selected`` is a list of type-id sets, in priority order (the user's
    types first); the budget ``limit`` is shared.  Returns a dict
    (id(type), frames) -> [count, bytes].
    """
    groups = {}
    left = limit
    getters = {}
    for ids in selected:
        if left <= 0 or not ids:
            break
        for pool in (census.objects, census.extra):
            for obj in pool:
                t = type(obj)
                if id(t) not in ids:
                    continue
                get = getters.get(id(t))
                if get is None:
                    get = getters[id(t)] = (getter_for(t), census.acc[id(t)][3])
                try:
                    frames = get[0](obj)
                except Exception:
                    frames = None
                left -= 1
                if frames:
                    key = (id(t), frames)
                    try:
                        size = get[1](obj)
                    except Exception:
                        size = 0
                    hit = groups.get(key)
                    if hit is None:
                        groups[key] = [1, size]
                    else:
                        hit[0] += 1
                        hit[1] += size
                if left <= 0:
                    break
            if left <= 0:
                break
    return groups


def instances_of(census, t):
    return [o for o in census.objects if type(o) is t]


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
    """Yield (root name, value, is_user) for module globals and class attrs."""
    for modname, ns, is_user in namespaces:
        try:
            items = list(ns.items())
        except Exception:
            continue
        for key, value in items:
            if isinstance(key, str) and not (key.startswith("__") and key.endswith("__")):
                yield modname + "." + key, value, is_user
        if not is_user:
            continue
        for klass in _own_classes(modname, ns):
            try:
                qual = _get_qualname(klass)
                items = list(_get_tdict(klass).items())
            except Exception:
                continue
            for key, value in items:
                if isinstance(key, str) and not (key.startswith("__") and key.endswith("__")):
                    yield modname + "." + qual + "." + key, value, True


def container_hints(namespaces, names):
    hints = []
    seen = set()
    for root, value, is_user in roots(namespaces):
        hit = container_length(value)
        if hit is None:
            continue
        t, length = hit
        if length < 1 or (not is_user and length < STDLIB_CONTAINER_MIN):
            continue
        key = (root, id(value))
        if key in seen:
            continue
        seen.add(key)
        hints.append((is_user, length, root, names(t)))
    hints.sort(key=lambda h: (not h[0], -h[1], h[2]))
    return [
        {"kind": "container", "name": root, "type": tname, "length": length}
        for _u, length, root, tname in hints[:CONTAINER_HINTS]
    ]


def lru_hints(wrappers):
    out = []
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
    counts = {}
    for obj in list(gc.garbage):
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
    found = {}
    want = dict(targets)
    all_roots = list(roots(namespaces))
    visited = set()
    for user_pass in (True, False):
        if not want or time.perf_counter() > deadline or len(visited) > PATH_NODES:
            break
        parent = {}   # id(obj) -> (parent id or None, root name, obj, shown)
        level = []
        for root, value, is_user in all_roots:
            if is_user != user_pass or id(value) in visited or id(value) in skip:
                continue
            visited.add(id(value))
            parent[id(value)] = (None, root, value, True)
            tid = id(type(value))
            if tid in want:
                found[tid] = _path_of(parent, id(value), names)
                del want[tid]
            level.append(value)
        depth = 0
        steps = 0
        while level and want and depth < PATH_DEPTH:
            nxt = []
            for obj in level:
                steps += 1
                if steps & 63 == 0 and time.perf_counter() > deadline:
                    level = []
                    nxt = []
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
                    nxt = []
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
            chain.append(root)
        key = up
    chain.reverse()
    return chain
