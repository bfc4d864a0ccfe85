"""Roots and retention paths.

The roots are the globals of every module and the attributes of the
program's own classes; the container hints (_hints.py) look at them, and
the retention paths start from them: for the program's most numerous
types, a breadth-first search finds one instance and reports the chain of
references that keeps it alive, in bounded time.
"""

import gc
import sys
import time

from ._containers import Map, Seq
from ._typeinfo import (CONTAINER_BASES, FrameType, FunctionType, MethodType, ModuleType,
                        atom_type, get_flags, get_qualname, get_tdict, module_dict,
                        type_module)

PATH_TYPES = 3                  # user types that get a retention path
PATH_DEPTH = 8
PATH_NODES = 20000
PATH_FANOUT = 1000              # children queued per expanded object
PATH_SECONDS = 0.5              # LEAKDIFF_PATH_SECONDS sets it (see _agent.py)

_HEAPTYPE = 1 << 9
_PLAIN_CONTAINERS = (dict, list, tuple, set, frozenset)
_CELL = type((lambda x: lambda: x)(0).__closure__[0])


# -- roots -----------------------------------------------------------------------

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
            ns = module_dict(mod)
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
            qual = get_qualname(klass)
            items = list(get_tdict(klass).values())
        except Exception:
            continue
        for value in items:
            if issubclass(type(value), type) and id(value) not in seen:
                try:
                    inner = get_qualname(value)
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
                prefix = modname + "." + get_qualname(klass)
                items = Seq(get_tdict(klass).items())
            except Exception:
                continue
            for key, value in items:
                if type(key) is str and not (key[:2] == "__" and key[-2:] == "__"):
                    yield prefix, key, value, True


# -- retention paths ----------------------------------------------------------------

def _plain_instance(t):
    """An instance of a class of the program whose dict we look through."""
    try:
        if not get_flags(t) & _HEAPTYPE:
            return False
    except Exception:
        return False
    return not issubclass(t, CONTAINER_BASES + (tuple, type, ModuleType))


def _children(obj, skip):
    t = type(obj)
    if atom_type(t) or id(obj) in skip:
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
            if is_user != user_pass or atom_type(type(value)):
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
                        if not room or atom_type(t):
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
