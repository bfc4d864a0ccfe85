"""Roots and retention paths.

The roots are the globals of every module and the attributes of the
program's own classes (the container hints, _hints.py, look at them too),
the frames of the program's threads, and the asyncio tasks not yet done.
The retention paths start from them: for the types most likely to have
grown, a breadth-first search finds one instance allocated at the type's
busiest site in the program and reports the chain of references that
keeps it alive, in bounded time.

Which types grew is for the diff to say (a recording of one run knows
nothing of the other run it will be compared with), so more types get a
path than will be shown; ``leakdiff diff`` keeps the paths of the types
whose count grew.
"""

import gc
import sys
import time

from ._containers import Map, Names, Seq
from ._typeinfo import (CONTAINER_BASES, FrameType, FunctionType, MethodType, ModuleType,
                        atom_type, get_flags, get_qualname, get_tdict, module_dict,
                        type_module)

PATH_TYPES = 3                  # user types that get a retention path
PATH_SITE_TYPES = 8             # more types, built-ins too, by program site
PATH_LOOKUPS = 2000             # allocation lookups for one type's instances
PATH_LOOKUP_BUDGET = 8000       # and for all of them
PATH_DEPTH = 8
PATH_NODES = 20000
PATH_FANOUT = 1000              # children queued per expanded object
PATH_SECONDS = 0.25             # LEAKDIFF_PATH_SECONDS sets it (see _agent.py)

_HEAPTYPE = 1 << 9
_PLAIN_CONTAINERS = (dict, list, tuple, set, frozenset)
_CELL = type((lambda x: lambda: x)(0).__closure__[0])


# -- roots -----------------------------------------------------------------------

def module_namespaces(kinds):
    """(name, dict, is_user) for every module in sys.modules, user first.

    A module registered under two names (multiprocessing adds __mp_main__
    for __main__, os adds os.path for posixpath) is listed once, under its
    own __name__, so that its containers are not reported twice."""
    user, std = [], []
    where = {}          # id of a namespace -> (list, index) of its entry
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
        seen = where.get(id(ns))
        if seen is not None:
            # Keep the alias only when it is the module's own name.
            if ns.get("__name__") == name:
                bucket, i = seen
                bucket[i] = (name, ns, bucket[i][2])
            continue
        bucket = std if kinds.is_stdlib(name) else user
        where[id(ns)] = (bucket, len(bucket))
        bucket.append((name, ns, bucket is user))
    del where
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


def _where(code, line):
    """``func at file:line`` for a frame or coroutine: the file's base name,
    which is what a person looks for in the program."""
    try:
        name = code.co_name
        filename = code.co_filename
    except Exception:
        return "?"
    if not isinstance(filename, str):
        filename = "?"
    base = filename.rpartition("/")[2] or filename
    return "%s at %s:%s" % (name, base, line if type(line) is int else "?")


def thread_roots(agent_files):
    """Yield (label, frame) for every frame of every thread, innermost first,
    leaving out the agent's own frames (the snapshot's included).

    A frame holds its function's locals: a cache built in a local of a
    thread that never returns lives as long as that frame.
    """
    try:
        tops = Seq(sys._current_frames().items())
    except Exception:
        return
    threading = sys.modules.get("threading")
    active = getattr(threading, "_active", None)
    for ident, frame in tops:
        thread = None
        try:
            thread = active.get(ident) if active is not None else None
            tname = thread.name if thread is not None else "%d" % ident
        except Exception:
            tname = "%d" % ident
        thread = None
        while frame is not None:
            try:
                code = frame.f_code
                if code.co_filename not in agent_files:
                    yield ("thread %s: frame %s" % (tname, _where(code, frame.f_lineno)), frame)
                frame = frame.f_back
            except Exception:
                break
    # tops holds the frames of every thread, the snapshot's own included:
    # drop them so that no reference cycle outlives the search.
    del tops[:]


def task_roots():
    """Yield (label, task) for the asyncio tasks that are not done.

    The event loop holds a pending task through callbacks and handles a
    person does not know by name; the task and its coroutine are what the
    program made.  The registry of tasks is weak, so a task found there is
    alive; a task that is done is no root (whatever keeps it is).
    """
    tasks = sys.modules.get("asyncio.tasks")
    if tasks is None:
        return
    found = Seq()
    for attr in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        registry = getattr(tasks, attr, None)
        if registry is None:
            continue
        try:
            found.extend(registry)
        except Exception:
            continue
    for task in found:
        try:
            if task.done():
                continue
            coro = task.get_coro()
            code = getattr(coro, "cr_code", None)
            frame = getattr(coro, "cr_frame", None)
            line = frame.f_lineno if frame is not None else None
            what = _where(code, line) if code is not None else type(coro).__name__
            yield ("task %s: coroutine %s" % (task.get_name(), what), task)
        except Exception:
            continue
    del found[:]


def program_site(frames, is_program_file):
    """True when an allocation traceback runs through the program's own
    code, outside of an import: where the program, not the interpreter's
    start-up or an import, made the object."""
    program = False
    for f in frames:
        filename = f[0]
        if type(filename) is not str:
            continue
        if filename.startswith("<frozen importlib"):
            return False
        if not program and is_program_file(filename):
            program = True
    return program


def choose_targets(census, ts_groups, kinds, names, is_program_file, instances_at, deadline):
    """The types to find a retention path for, each with the ids of the
    instances a path may end at (None: any instance).

    First the PATH_SITE_TYPES types, built-in ones included, with the most
    instances at one site in the program (``ts_groups`` is the snapshot's
    type x site table, {(type name, traceback): [count, bytes]}); then the
    PATH_TYPES most numerous types of the program.  A type with a program
    site gets the ids of its instances allocated there, found by looking up
    up to PATH_LOOKUPS instances (PATH_LOOKUP_BUDGET in all) with
    ``instances_at(t, instances, traceback)``, which returns the ids of
    those allocated there; a type none of whose looked-up instances came
    from that site gets no path, since a path to another instance would
    explain something else.  ``instances_at`` is None when allocations are
    not traced; then only the program's types are searched, for any
    instance.  No lookups start after ``deadline``, the one of the whole
    search.  Returns a Seq of (type, Names or None).
    """
    verdicts = Map()    # file name -> is the program's

    def known(filename):
        hit = verdicts.get(filename)
        if hit is None:
            hit = verdicts[filename] = bool(is_program_file(filename))
        return hit

    best = Map()        # type name -> (count, traceback)
    for (tname, frames), pair in ts_groups.items():
        count = pair[0]
        prev = best.get(tname)
        if (prev is None or count > prev[0]) and program_site(frames, known):
            best[tname] = (count, frames)
    ranked = Seq()
    user = Seq()
    for t, (count, _size) in census.totals.items():
        hit = best.get(names(t))
        if hit is not None:
            ranked.append((hit[0], t))
        if kinds.is_user(type_module(t)):
            user.append((count, t))
    ranked.sort(key=lambda e: -e[0])
    user.sort(key=lambda e: -e[0])
    order = Seq(t for _c, t in ranked[:PATH_SITE_TYPES])
    for _c, t in user[:PATH_TYPES]:
        if t not in order:
            order.append(t)
    del ranked, user
    out = Seq()
    left = PATH_LOOKUP_BUDGET
    for t in order:
        hit = best.get(names(t))
        if hit is None or instances_at is None:
            out.append((t, None))
            continue
        if left <= 0 or time.perf_counter() > deadline:
            continue
        n = census.totals[t][0]
        # Look up enough instances to expect a few hundred from the site.
        want = min(n, PATH_LOOKUPS, left, max(256, (256 * n) // max(hit[0], 1)))
        group = census.sample(t, want)
        if not group:
            continue
        left -= len(group)
        try:
            ids = instances_at(t, group, hit[1])
        except Exception:
            ids = None
        del group
        if ids:
            out.append((t, Names(ids)))
    return out


# -- retention paths ----------------------------------------------------------------

def _plain_instance(t):
    """An instance of a class of the program whose dict we look through."""
    try:
        if not get_flags(t) & _HEAPTYPE:
            return False
    except Exception:
        return False
    return not issubclass(t, CONTAINER_BASES + (tuple, type, ModuleType))


def _children(obj, skip, agent_files, running):
    t = type(obj)
    if atom_type(t) or id(obj) in skip:
        return ()
    if type_module(t).startswith("leakdiff"):
        return ()
    if issubclass(t, (type, ModuleType)):
        return ()
    if t is FrameType:
        # A frame's referents are its locals, its caller and its globals
        # (a module dict, skipped); the agent's frames hold the search.
        if obj.f_code.co_filename in agent_files:
            return ()
        if id(obj) in running:
            return running_frame_children(obj)
        return gc.get_referents(obj)
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


_OPTIMIZED = 0x1                # CO_OPTIMIZED: a function's frame, fast locals


def running_frame_children(frame):
    """What a frame that is still running holds: its caller and its locals.

    From 3.11 to 3.12 the collector does not see into the locals of a frame
    still running (the interpreter owns them, not the frame object), so
    they are read through f_locals.  There that makes a dict of the locals
    and keeps it on the frame, holding every value until the next read: it
    is emptied again at once, or the agent would keep alive what the
    program lets go.  (A program calling locals() in that function gets
    the same dict, refilled by its next call.)  Before 3.11 the collector
    sees the locals; from 3.13 f_locals is a view that makes nothing.
    """
    out = Seq(gc.get_referents(frame))
    if not (3, 11) <= sys.version_info < (3, 14):
        return out
    try:
        function = frame.f_code.co_flags & _OPTIMIZED
        values = frame.f_locals
        if sys.version_info >= (3, 13):
            out.extend(values.values())
        elif function and type(values) is dict:
            out.extend(values.values())
            values.clear()
    except Exception:
        pass
    values = None
    return out


def module_table_roots(modules_too):
    """Yield (label, value) for the entries of sys.modules itself: the
    values that are not modules (a program may register any object there,
    ``sys.modules['x'] = holder``, and the import system keeps it), and,
    when ``modules_too``, the module objects, which the interpreter holds
    through sys.modules whether or not any global names them.  The label
    is ("sys.modules", name)."""
    try:
        items = Seq(sys.modules.items())
    except Exception:
        return
    for name, value in items:
        if type(name) is not str or value is None or name.startswith("leakdiff"):
            continue
        if issubclass(type(value), ModuleType):
            if modules_too:
                yield ("sys.modules", name), value
        elif not type_module(type(value)).startswith("leakdiff"):
            yield ("sys.modules", name), value
    del items[:]


def _all_roots(namespaces, user_pass, agent_files):
    """(label, value) of the roots of one pass: the program's module globals
    and class attributes, its threads' frames, its pending tasks and what
    it put in sys.modules first, then the standard library's globals and
    the modules.  A label is a (prefix, key) pair for a global or an entry
    of sys.modules, joined only when a path is written, or a string."""
    for prefix, key, value, is_user in roots(namespaces):
        if is_user == user_pass:
            yield (prefix, key), value
    if user_pass:
        for label, frame in thread_roots(agent_files):
            yield label, frame
        for label, task in task_roots():
            yield label, task
    for label, value in module_table_roots(not user_pass):
        yield label, value


def retention_paths(namespaces, targets, skip, names, deadline, agent_files=()):
    """Breadth-first search from roots to one wanted instance of each type.

    ``targets`` is a sequence of (type, ids): a path ends at an instance of
    the type whose id is in ids, or at any instance when ids is None (see
    choose_targets).  Returns {type: [path strings]}, root first.  The
    program's roots are searched first, then the standard library's.  At
    most PATH_NODES objects are queued for expansion and the search stops
    at ``deadline``; the children of an expanded object are always checked
    for targets (a cheap type test), so a big container near a root does
    not hide the instances right behind it.  An instance of a wanted type
    that is not one of the wanted ones is searched through like any other
    object: an exception not raised at the site may still hold one that was.
    """
    found = Map()
    allowed = Map()
    for t, ids in targets:
        allowed[t] = ids
    # A tuple, not a set: "in" compares identity first and hashes nothing.
    want = tuple(allowed)
    visited = set()
    running = Map()     # ids of the threads' frames, which are running
    for user_pass in (True, False):
        if not want or time.perf_counter() > deadline:
            break
        parent = Map()   # id(obj) -> (parent id or None, root, obj, shown)
        level = Seq()
        for label, value in _all_roots(namespaces, user_pass, agent_files):
            if atom_type(type(value)):
                continue
            k = id(value)
            if k in visited or k in skip:
                continue
            visited.add(k)
            t = type(value)
            # A thread's frame or a task is named by its label alone.
            parent[k] = (None, label, value, type(label) is not str)
            if t is FrameType:
                running[k] = True
            if t in want and _is_wanted(allowed, t, k):
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
                    kids = _children(obj, skip, agent_files, running)
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
                            if t in want and _is_wanted(allowed, t, id(kid)):
                                want = _reached(parent, found, want, pid, kid, t, names)
                        if not want:
                            break
                        continue
                    for kid in kids[:PATH_FANOUT]:
                        t = type(kid)
                        if t in want and _is_wanted(allowed, t, id(kid)):
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


def _is_wanted(allowed, t, k):
    ids = allowed[t]
    return ids is None or k in ids


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
            steps.append(_root_name(root))
        key = up
    steps.reverse()
    return steps


def _root_name(root):
    if type(root) is str:
        return root
    if root[0] == "sys.modules":
        return "sys.modules[%r]" % (root[1],)
    return root[0] + "." + root[1]


# -- roots held by C code ---------------------------------------------------------

C_ROOT_TARGETS = 16             # instances of one type looked up from
C_ROOT_DEPTH = 6                # scans of the collector's objects, at most


def c_held_paths(census, targets, found, names, deadline, hidden, is_agent_type):
    """Paths for the targets the search from the roots did not reach, up to
    a reference held by C code: an extension's static or module state, a
    structure of the interpreter (atexit's callbacks, say), anything that
    holds a reference the collector cannot see.

    No list of referrers is kept anywhere, so they are found by scanning
    the referents of every object the collector tracks, once per level, for
    the objects of the level (a C-level set test per object); an object
    whose reference count is higher than the references found is held by
    something the collector does not see, and ends the path.  Otherwise
    the walk goes up to one of its referrers, that are the program's.
    ``hidden`` is the number of references the census itself holds to
    each counted object out of the collector's sight (the C census holds
    one); the references of this function are measured on a probe object
    held the same way.  ``found`` (type -> path) is updated in place; at
    most C_ROOT_TARGETS instances of a type are looked up, for at most
    C_ROOT_DEPTH scans, none started after ``deadline``.  A path starts
    with "held by C code (refcount N, M references found)".
    """
    getrefcount = sys.getrefcount
    level = Seq()       # objects of this level; a probe last
    below = Seq()       # for each, (type, path below it) of the target
    for t, ids in targets:
        if t in found:
            continue
        group = census.members(t)
        if not group:
            continue
        n = 0
        for obj in group:
            if ids is not None and id(obj) not in ids:
                continue
            level.append(obj)
            below.append((t, Seq((names(t),))))
            n += 1
            if n >= C_ROOT_TARGETS:
                break
        group = None
    obj = None
    if not level:
        return found
    done = Map()        # id of an object looked through -> True
    for _depth in range(C_ROOT_DEPTH):
        if not level or time.perf_counter() > deadline:
            break
        probe = _Probe()
        level.append(probe)
        probe = None
        want = Map()
        for i, obj in enumerate(level):
            want[id(obj)] = i
            done[id(obj)] = True
        obj = None
        wanted = Names(want)
        seen_all = Seq([0] * len(level))    # references found, all
        seen_agent = Seq([0] * len(level))  # of them, the agent's
        up = Seq([None] * len(level))       # a referrer of the program's
        objs = gc.get_objects()
        late = False
        for j, o in enumerate(objs):
            if not j & 4095 and time.perf_counter() > deadline:
                late = True
                break
            try:
                refs = gc.get_referents(o)
            except Exception:
                continue
            if wanted.isdisjoint(map(id, refs)):
                continue
            ot = type(o)
            agent = is_agent_type(ot)
            # A path goes up through what a person knows by name: not a
            # frame (a running one would be a root already), a class or
            # a module.
            dead_end = ot is FrameType or issubclass(ot, (type, ModuleType)) or atom_type(ot)
            for r in refs:
                i = want.get(id(r))
                if i is None:
                    continue
                seen_all[i] += 1
                if agent:
                    seen_agent[i] += 1
                elif up[i] is None and not dead_end:
                    up[i] = o
            refs = None
        o = refs = None
        del objs
        if late:
            break
        base = getrefcount(level[-1]) - seen_all[-1]
        excesses = Seq()
        seen_through = Map()    # type -> an instance of it here has no excess
        for i in range(len(level) - 1):
            excess = getrefcount(level[i]) - seen_all[i] - base - hidden
            excesses.append(excess)
            if excess <= 0:
                seen_through[below[i][0]] = True
        nxt = Seq()
        nxt_below = Seq()
        for i in range(len(level) - 1):
            t, path = below[i]
            if t in found:
                continue
            excess = excesses[i]
            # One stray reference the agent holds (a loop variable left
            # bound, say) would look like one held by C: a type ends at C
            # code only when none of its instances looked up at this level
            # is fully explained by references found.
            if excess > 0 and t not in seen_through:
                mine = seen_all[i] - seen_agent[i]
                label = "held by C code (refcount %d, %d reference%s found)" % (
                    mine + excess, mine, "" if mine == 1 else "s")
                path.append(label)
                path.reverse()
                found[t] = list(path)
                continue
            holder = up[i]
            if holder is None or id(holder) in done:
                continue
            step = Seq(path)
            step.append(names(type(holder)))
            nxt.append(holder)
            nxt_below.append((t, step))
        holder = None
        del level[:], below[:], up[:], excesses[:]
        seen_through.clear()
        level, below = nxt, nxt_below
    del level[:], below[:]
    return found


class _Probe:
    """An object with a known number of references, to measure how many
    the scan in c_held_paths itself holds."""

    __slots__ = ()
