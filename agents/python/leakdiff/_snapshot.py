"""Building one leakdiff-snapshot(5) document.

Order of work, chosen so the agent's own temporaries do not show up:

1. a full collection (gc.collect, run by the caller in the requesting
   thread);
2. the census, the type x site lookups and the hints, while the objects
   are held in lists of the agent's own list type, which the census leaves
   out; then all of that is dropped;
3. the live blocks by traceback (from the allocator hooks' table, see
   _hooks.py, or from tracemalloc's traces), leaving out allocations made
   under the agent's frames (what the census used is freed by then, and
   whatever the agent keeps was allocated under its own frames);
4. names for the frames (enclosing function, its first line, the text),
   then the document.
"""

import gc
import os
import sys
import time

from . import _containers, _hints, _objects, _paths, _typeinfo
from ._wire import clean_text

FORMAT = "leakdiff-snapshot"
VERSION = 1
MAX_FRAMES = 1024      # longest traceback a reader accepts


class Tables:
    """The string and frame tables of one document."""

    def __init__(self, resolved, ext=None):
        self.ext = ext          # the _census extension, or None
        self.strings = []
        self.string_ix = {}
        self.frames = []
        self.frame_ix = {}
        self.resolved = resolved
        self.kind = None        # string index of "python", once a frame needs it

    def string(self, text):
        ix = self.string_ix.get(text)
        if ix is None:
            ix = self.string_ix[text] = len(self.strings)
            self.strings.append(clean_text(text))
        return ix

    def frame(self, filename, line):
        key = (filename, line)
        ix = self.frame_ix.get(key)
        if ix is None:
            name, first, text = self.resolved.get(key, ("?", -1, None))
            if self.kind is None:
                self.kind = self.string("python")
            # The sixth element is the frame's kind (leakdiff-snapshot(5)).
            row = [
                self.string(filename if isinstance(filename, str) else "?"),
                line if type(line) is int and line >= 0 else 0,
                self.string(name),
                first if type(first) is int and first > 0 else -1,
                self.string(text) if text else -1,
                self.kind,
            ]
            ix = self.frame_ix[key] = len(self.frames)
            self.frames.append(row)
        return ix

    def tracebacks(self, tbs):
        """[[frame number]] of a list of tracebacks."""
        if self.ext is not None:
            try:
                return self.ext.frame_rows(tbs, self.frame_ix, self._add, MAX_FRAMES)
            except Exception:
                pass
        return [self.traceback(frames) for frames in tbs]

    def _add(self, f):
        return self.frame(f[0], f[1])

    def traceback(self, frames):
        # tracemalloc's frames are (filename, line) tuples already: used as
        # keys as they are, they spare a key tuple per frame.
        known = self.frame_ix.get
        out = []
        for f in frames[:MAX_FRAMES]:
            ix = known(f)
            out.append(self.frame(f[0], f[1]) if ix is None else ix)
        return out


def _extension_suffixes():
    try:
        from importlib.machinery import EXTENSION_SUFFIXES
        return tuple(EXTENSION_SUFFIXES)
    except Exception:
        return (".so", ".pyd")


_EXTENSION_SUFFIXES = _extension_suffixes()


def type_origin(t, kinds):
    """Where type t comes from: "builtin" (compiled into the interpreter),
    "extension" (a module loaded from a shared library), "stdlib" or
    "user" (the program's own code, third-party packages included).  The
    report's suspect is a "user" type: a name with a dot in it says
    nothing (_thread.lock is as dotted as app.Session)."""
    mod = _typeinfo.type_module(t)
    top = mod.partition(".")[0]
    if not mod or top == "builtins" or top in sys.builtin_module_names:
        return "builtin"
    module = sys.modules.get(mod) or sys.modules.get(top)
    try:
        path = getattr(module, "__file__", None) if module is not None else None
    except Exception:
        path = None
    if isinstance(path, str) and path.endswith(_EXTENSION_SUFFIXES):
        return "extension"
    if kinds.is_stdlib(mod):
        return "stdlib"
    return "user" if kinds.is_user(mod) else "stdlib"


def _origins(totals, kinds):
    """{type name: origin} for the census's types; for types of one name,
    the first one's."""
    out = {}
    for t in totals:
        try:
            name = _typeinfo.type_name(t)
            if name not in out:
                out[name] = type_origin(t, kinds)
        except Exception:
            pass
    return out


def _iso_utc(stamp):
    whole = int(stamp)
    ms = int((stamp - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%03dZ" % ms


def uncollectable_total():
    try:
        return sum(g.get("uncollectable", 0) for g in gc.get_stats())
    except Exception:
        return 0


class _Laps:
    """Phase timings of one snapshot (kept on the builder, for tests)."""

    __slots__ = ("last", "phases")

    def __init__(self, start):
        self.last = start
        self.phases = _containers.Seq()

    def __call__(self, name):
        now = time.perf_counter()
        self.phases.append((name, now - self.last))
        self.last = now


class Builder:
    """Takes one snapshot for the agent; see take()."""

    __slots__ = ("agent", "phases", "notes", "quiet", "light")

    def __init__(self, agent):
        self.agent = agent
        self.quiet = False  # the agent's allocations skip tracemalloc
        # Parts left out of the next documents, for callers that compare
        # only types and sites (the pytest plugin between runs): a set
        # holding "type_sites" and/or "hints"; empty for a full document.
        self.light = ()
        self.phases = ()    # (name, seconds) of the last snapshot, for tests
        self.notes = _containers.Seq()   # warnings for the user; see note()

    def note(self, message):
        """Queue a warning: take() may run on the worker thread, and only
        the thread that asked for the snapshot writes to the pipe."""
        self.notes.append(message)

    def take(self, seq, label, trigger, collected, uncollectable):
        """Build the document.  The caller ran gc.collect() just before."""
        agent = self.agent
        started = time.perf_counter()
        wall = time.time()

        # Everything alive during the census is of the agent's own types.
        kinds = _typeinfo.ModuleKinds(agent.stdlib_prefixes, agent.agent_modules)
        ext = getattr(agent, "census_ext", None)
        # Read before the census allocates its tables (see _malloc_bytes).
        malloc_bytes = _malloc_bytes(agent, ext)
        census = _objects.Census() if ext is None else _objects.CCensus(ext)
        lap = _Laps(started)
        traces = None
        try:
            census.run(agent.agent_files, kinds.is_agent_type, lap)
            lap("census.sizes")
            if census.skipped:
                self.note("%d objects left out of the census: their type "
                          "cannot be hashed" % census.skipped)
            types = census.by_name()
            origins = _origins(census.totals, kinds)
            tracing = agent.tm.is_tracing()
            depth = agent.tm.get_traceback_limit() if tracing else agent.depth
            names = _typeinfo.Namer()
            light = self.light
            if tracing and "type_sites" not in light:
                ts_groups, sampled = self._type_sites(census, kinds, names)
            else:
                ts_groups, sampled = {}, {}
            lap("type_sites")
            # Before the traces may be read and tracing stopped (below): the
            # path targets are the instances allocated at a site.
            path_plan = self._path_targets(census, kinds, names, ts_groups, tracing)
            lap("path_targets")
            if tracing and trigger == "exit" and agent.started_tracing and not self.quiet:
                # No snapshot follows the one at exit: once the traces are
                # read, tracing the agent's own work is pure cost (unless
                # the extension keeps it from being traced already).
                traces = self._sites()
                lap("sites")
                try:
                    agent.tm.stop()
                except Exception:
                    pass
            hints = [] if "hints" in light else self._hints(census, kinds, names, collected, lap, path_plan)
        finally:
            census.release()
            census = None
        names = None

        if traces is None:
            traces = self._sites() if tracing else []
            lap("sites")

        wanted = set()
        for frames, _count, _size in traces:
            wanted.update(frames)
        for (_tname, frames) in ts_groups:
            wanted.update(frames)
        resolved = agent.resolver.resolve(
            (f[0], f[1]) for f in wanted if len(f) >= 2)
        del wanted

        lap("resolve")
        tables = Tables(resolved, ext)
        type_rows = []
        type_ix = {}
        objects = object_bytes = 0
        types.sort(key=lambda row: (-row[1], row[0]))
        for name, count, size in types:
            type_ix[name] = len(type_rows)
            row = [tables.string(name), count, size]
            origin = origins.get(name)
            if origin is not None:
                # The fourth element is where the type comes from (leakdiff-snapshot(5)).
                row.append(tables.string(origin))
            type_rows.append(row)
            objects += count
            object_bytes += size

        site_rows = []
        heap_bytes = heap_blocks = 0
        numbered = tables.tracebacks([frames for frames, _count, _size in traces])
        for (_frames, count, size), row in zip(traces, numbered):
            site_rows.append([count, size, row])
            heap_blocks += count
            heap_bytes += size
        del traces, numbered

        ts_rows = []
        merged = {}
        for (tname, frames), (count, size) in ts_groups.items():
            ix = type_ix.get(tname)
            if ix is None:
                continue
            _objects.add_counts(merged, (ix, tuple(tables.traceback(frames))), count, size)
        for (ix, tb), (count, size) in merged.items():
            ts_rows.append([ix, count, size, list(tb)])
        ts_rows.sort(key=lambda row: (row[0], -row[1]))
        del ts_groups, merged

        try:
            generations = [
                {"collections": int(g.get("collections", 0)),
                 "collected": int(g.get("collected", 0)),
                 "uncollectable": int(g.get("uncollectable", 0))}
                for g in gc.get_stats()
            ]
        except Exception:
            generations = []

        meta = {
            "runtime": "python",
            "agent": agent.agent_name,
            "pid": os.getpid(),
            "seq": seq,
            "label": clean_text(label),
            "trigger": trigger,
            "time": _iso_utc(wall),
            "python": agent.python_version,
            "depth": int(depth),
            "tracing": bool(tracing),
            "roots": agent.import_roots(),
            "stdlib": [clean_text(d) for d in agent.stdlib_dirs],
        }
        if tracing:
            meta["tracer"] = "tracemalloc"    # the hooks' builder says "hooks"
        if agent.executable:
            meta["executable"] = clean_text(agent.executable)
        if agent.host:
            meta["host"] = clean_text(agent.host)
        if sampled:
            meta["type_sites_sampled"] = {clean_text(k): v for k, v in sampled.items()}

        doc = {
            "format": FORMAT,
            "version": VERSION,
            "meta": meta,
            "strings": tables.strings,
            "frames": tables.frames,
            "totals": {
                "heap_bytes": heap_bytes, "heap_blocks": heap_blocks,
                "objects": objects, "object_bytes": object_bytes,
            },
            "types": type_rows,
            "sites": site_rows,
            "type_sites": ts_rows,
            "gc": {
                "enabled": gc.isenabled(),
                "collected": collected,
                "uncollectable": uncollectable,
                "garbage": len(gc.garbage),
                "generations": generations,
            },
            "hints": hints,
        }
        if malloc_bytes is not None:
            doc["totals"]["malloc_bytes"] = malloc_bytes
        lap("document")
        self.phases = lap.phases
        meta["elapsed_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return doc

    # -- pieces -------------------------------------------------------------

    def _type_sites(self, census, kinds, names):
        """Pick the types to trace back and group their instances by site.

        Looking up where one object was allocated costs 5-50 us (tracemalloc
        traces the tuples the lookup returns), so the work is budgeted:
        the program's own types first, most numerous first, up to
        USER_TYPE_LOOKUPS instances each, then the TOP_TYPES most numerous
        other types, up to OTHER_TYPE_LOOKUPS each, LOOKUP_BUDGET in all.
        A type with more instances than its share is sampled evenly and
        its counts scaled; such types are listed in meta.type_sites_sampled
        as [instances looked up, instances].
        """
        agent = self.agent
        ranked = sorted(census.totals.items(), key=lambda kv: -kv[1][0])
        plan = []
        left = _objects.LOOKUP_BUDGET
        user = set()
        for t, (count, _size) in ranked:
            if left > 0 and kinds.is_user(_typeinfo.type_module(t)):
                take = min(count, _objects.USER_TYPE_LOOKUPS, left)
                plan.append((t, take))
                user.add(t)
                left -= take
        for t, (count, _size) in ranked[:_objects.TOP_TYPES]:
            if left > 0 and t not in user:
                take = min(count, _objects.OTHER_TYPE_LOOKUPS, left)
                plan.append((t, take))
                left -= take
        sampled = {}
        for t, take in plan:
            count = census.totals[t][0]
            if take < count:
                sampled[names(t)] = [take, count]
        del ranked, user
        by_address = agent.by_address()
        plain = agent.tm.mod._get_object_traceback

        def getter_for(t):
            return _objects.tracebacks_getter(t, plain, by_address)

        raw = _objects.type_sites(census, plan, getter_for)
        groups = {}
        dropped = agent.is_agent_traceback
        for (t, frames), pair in raw.items():
            if dropped(frames):
                continue
            key = (names(t), frames)
            prev = groups.get(key)
            if prev is None:
                groups[key] = list(pair)
            else:
                prev[0] += pair[0]
                prev[1] += pair[1]
        return groups, sampled

    def _path_targets(self, census, kinds, names, ts_groups, tracing):
        """(targets, deadline) for the retention paths (see
        _paths.choose_targets); the deadline bounds the lookups and the
        search together."""
        deadline = time.perf_counter() + _paths.PATH_SECONDS
        try:
            targets = _paths.choose_targets(census, ts_groups, kinds, names, self._program_file,
                                            self._instances_at if tracing else None,
                                            deadline)
        except Exception as exc:
            self.note("path hints skipped: %r" % (exc,))
            targets = ()
        return targets, deadline

    def _hints(self, census, kinds, names, collected, lap, path_plan):
        hints = []
        namespaces = _paths.module_namespaces(kinds)
        try:
            hints.extend(_hints.container_hints(namespaces, names))
        except Exception as exc:
            self.note("container hints skipped: %r" % (exc,))
        try:
            functools = sys.modules.get("functools")
            lru_type = getattr(functools, "_lru_cache_wrapper", None)
            wrappers = census.members(lru_type) if isinstance(lru_type, type) else None
            if wrappers:
                hints.extend(_hints.lru_hints(wrappers))
            del wrappers
        except Exception as exc:
            self.note("lru_cache hints skipped: %r" % (exc,))
        try:
            hints.extend(_hints.garbage_hints(names))
        except Exception:
            pass
        if collected > 0:
            hints.append({"kind": "cycles", "collected": collected})
        lap("hints")
        try:
            agent = self.agent
            targets, deadline = path_plan
            if targets:
                skip = {id(sys.modules)}
                for _name, ns, _is_user in namespaces:
                    skip.add(id(ns))
                paths = _paths.retention_paths(namespaces, targets, skip, names, deadline,
                                               agent.agent_files)
                # The census holds every object it counted: the C one out
                # of the collector's sight.
                hidden = 1 if isinstance(census, _objects.CCensus) else 0
                _paths.c_held_paths(census, targets, paths, names, deadline, hidden,
                                    kinds.is_agent_type)
                for t, _ids in targets:
                    path = paths.get(t)
                    if path:
                        hints.append({"kind": "path", "type": names(t),
                                      "path": [clean_text(p) for p in path]})
        except Exception as exc:
            self.note("path hints skipped: %r" % (exc,))
        lap("paths")
        for hint in hints:
            for key in ("name", "type"):
                if key in hint:
                    hint[key] = clean_text(hint[key])
        return hints

    def _instances_at(self, t, group, site):
        """The ids of the instances of t in group whose allocation traceback
        is site (a traceback as _type_sites gives it), as a Names."""
        agent = self.agent
        get = _objects.tracebacks_getter(t, agent.tm.mod._get_object_traceback,
                                         agent.by_address())
        ids = _containers.Seq()
        for obj in group:
            try:
                if get(obj) == site:
                    ids.append(id(obj))
            except Exception:
                continue
        return _containers.Names(ids)

    def _program_file(self, filename):
        """True for a file of the program: neither the standard library's
        (nor site-packages under it), nor the agent's, nor "<...>"."""
        agent = self.agent
        if filename[:1] == "<" or filename.startswith(agent.stdlib_prefixes):
            return False
        return not agent.is_agent_traceback(((filename, 0),))

    def _sites(self):
        """[(frames, count, bytes)] of the live traced blocks, agent's left out.

        Blocks are grouped by their traceback tuple (the C module hands out
        one tuple per distinct traceback); sizes are collected in lists and
        summed once per traceback, which keeps allocations few.
        """
        agent = self.agent
        traces = agent.tm.get_traces()
        ext = getattr(agent, "census_ext", None)
        rows = None
        if ext is not None:
            try:
                rows = ext.group_traces(traces)
            except Exception:
                rows = None
        if rows is None:
            rows = _group_traces(traces)
        del traces
        dropped = agent.is_agent_traceback
        merged = {}
        for frames, count, size in rows:
            if not frames or dropped(frames):
                continue
            key = frames if len(frames) <= MAX_FRAMES else frames[:MAX_FRAMES]
            _objects.add_counts(merged, key, count, size)
        del rows
        return [(frames, c, b) for frames, (c, b) in merged.items()]


def _malloc_bytes(agent, ext):
    """Bytes the process has from the C library's malloc, less the agent's
    own tables that grow with the traced blocks (the hooks' live table,
    tracemalloc's traces); None when the _census extension cannot tell
    (not loaded, built before it could, not glibc).  The diff compares its
    growth with the traced heap's to say when memory grew where no hook
    looks (leakdiff-diff(1)).  Read at the start of a snapshot, before the
    census and the document allocate anything."""
    read = getattr(ext, "malloc_bytes", None)    # an older _census has none
    if read is None:
        return None
    try:
        total = read()
        if total is None:
            return None
        own = 0
        tm = agent.tm
        sampler = getattr(tm, "ext", None)
        if sampler is not None:
            own = sampler.stats().get("table_bytes", 0)
        elif tm.is_tracing():
            own = tm.mod.get_tracemalloc_memory()
        return max(0, int(total) - int(own))
    except Exception:
        return None


def _group_traces(traces):
    """[(traceback, count, bytes)] of raw traces, by traceback identity
    (what _census.group_traces does in C)."""
    by_tb = _containers.Map()
    for trace in traces:
        frames = trace[2]
        sizes = by_tb.get(frames)
        if sizes is None:
            by_tb[frames] = sizes = _containers.Seq()
        sizes.append(trace[1])
    out = [(frames, len(sizes), sum(sizes)) for frames, sizes in by_tb.items()]
    by_tb.clear()
    return out
