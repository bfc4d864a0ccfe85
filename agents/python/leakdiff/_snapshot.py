"""Building one leakdiff-snapshot(5) document.

Order of work, chosen so the agent's own temporaries do not show up:

1. a full collection (gc.collect);
2. the census, type x site lookups and the hints, all while the objects
   are held in one list that the census itself excludes; then every
   temporary is dropped;
3. the raw tracemalloc traces, leaving out allocations made by the agent
   (the census work is already freed, and whatever the agent keeps was
   allocated under its own frames);
4. names for the frames (enclosing function, its first line, the text).
"""

import gc
import os
import sys
import time

from . import _heap
from ._wire import clean_text

FORMAT = "leakdiff-snapshot"
VERSION = 1
MAX_FRAMES = 1024      # longest traceback a reader accepts


class Tables:
    """The string and frame tables of one document."""

    def __init__(self, resolved):
        self.strings = []
        self.string_ix = {}
        self.frames = []
        self.frame_ix = {}
        self.resolved = resolved

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
            row = [
                self.string(filename if isinstance(filename, str) else "?"),
                line if type(line) is int and line >= 0 else 0,
                self.string(name),
                first if type(first) is int and first > 0 else -1,
                self.string(text) if text else -1,
            ]
            ix = self.frame_ix[key] = len(self.frames)
            self.frames.append(row)
        return ix

    def traceback(self, frames):
        return [self.frame(f[0], f[1]) for f in frames[:MAX_FRAMES]]


def _iso_utc(stamp):
    whole = int(stamp)
    ms = int((stamp - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%03dZ" % ms


def _uncollectable_total():
    try:
        return sum(g.get("uncollectable", 0) for g in gc.get_stats())
    except Exception:
        return 0


class Builder:
    """Takes one snapshot for the agent; see take()."""

    def __init__(self, agent):
        self.agent = agent

    def take(self, seq, label, trigger):
        agent = self.agent
        started = time.perf_counter()
        wall = time.time()

        before = _uncollectable_total()
        collected = gc.collect()
        uncollectable = max(0, _uncollectable_total() - before)

        kinds = _heap.ModuleKinds(agent.stdlib_dirs, agent.agent_modules)
        names_cache = {}

        def names(t):
            name = names_cache.get(id(t))
            if name is None:
                name = names_cache[id(t)] = (_heap.type_name(t), t)
            return name[0]

        exclude = _heap.owned_ids(agent.state_roots(), agent.own_modules)
        census = _heap.Census()
        try:
            census.run(exclude, agent.agent_files)
            types = census.by_name()
            tracing = agent.tm.is_tracing()
            ts_groups = {}
            if tracing:
                ts_groups = self._type_sites(census, kinds)
            hints = self._hints(census, kinds, names, collected, started)
        finally:
            census.release()
            census = None
            exclude = None
        names_cache.clear()

        traces = self._sites() if tracing else []
        depth = agent.tm.get_traceback_limit() if tracing else agent.depth

        wanted = set()
        for frames, _count, _size in traces:
            wanted.update(frames)
        for (_tname, frames) in ts_groups:
            wanted.update(frames)
        resolved = agent.resolver.resolve(
            (f[0], f[1]) for f in wanted if len(f) >= 2)
        del wanted

        tables = Tables(resolved)
        type_rows = []
        type_ix = {}
        objects = object_bytes = 0
        types.sort(key=lambda row: (-row[1], row[0]))
        for name, count, size in types:
            type_ix[name] = len(type_rows)
            type_rows.append([tables.string(name), count, size])
            objects += count
            object_bytes += size

        site_rows = []
        heap_bytes = heap_blocks = 0
        for frames, count, size in traces:
            site_rows.append([count, size, tables.traceback(frames)])
            heap_blocks += count
            heap_bytes += size
        del traces

        ts_rows = []
        merged = {}
        for (tname, frames), (count, size) in ts_groups.items():
            ix = type_ix.get(tname)
            if ix is None:
                continue
            key = (ix, tuple(tables.traceback(frames)))
            prev = merged.get(key)
            if prev is None:
                merged[key] = [count, size]
            else:
                prev[0] += count
                prev[1] += size
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
        if agent.executable:
            meta["executable"] = clean_text(agent.executable)
        if agent.host:
            meta["host"] = clean_text(agent.host)

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
        meta["elapsed_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return doc

    # -- pieces -------------------------------------------------------------

    def _type_sites(self, census, kinds):
        """Pick the types to trace back and group their instances."""
        agent = self.agent
        user = set()
        for key, (count, _size, t, _sizer) in census.acc.items():
            if kinds.is_user(_heap.type_module(t)):
                user.add(key)
        top = sorted(census.acc.items(), key=lambda kv: -kv[1][0])[:_heap.TOP_TYPES]
        rest = {key for key, _entry in top if key not in user}
        by_address = agent.by_address()
        plain = agent.tm.get_object_traceback

        def getter_for(t):
            return _heap.tracebacks_getter(t, plain, by_address)

        raw = _heap.type_sites(census, [user, rest], getter_for)
        groups = {}
        for (tid, frames), pair in raw.items():
            name = _heap.type_name(census.acc[tid][2])
            key = (name, frames)
            prev = groups.get(key)
            if prev is None:
                groups[key] = pair
            else:
                prev[0] += pair[0]
                prev[1] += pair[1]
        return groups

    def _hints(self, census, kinds, names, collected, started):
        agent = self.agent
        hints = []
        namespaces = _heap.module_namespaces(kinds)
        try:
            hints.extend(_heap.container_hints(namespaces, names))
        except Exception as exc:
            agent.note("container hints skipped: %r" % (exc,))
        try:
            functools = sys.modules.get("functools")
            lru_type = getattr(functools, "_lru_cache_wrapper", None)
            if isinstance(lru_type, type) and id(lru_type) in census.acc:
                wrappers = _heap.instances_of(census, lru_type)
                hints.extend(_heap.lru_hints(wrappers))
                del wrappers
        except Exception as exc:
            agent.note("lru_cache hints skipped: %r" % (exc,))
        try:
            hints.extend(_heap.garbage_hints(names))
        except Exception:
            pass
        if collected > 0:
            hints.append({"kind": "cycles", "collected": collected})
        try:
            user = [
                entry for entry in census.acc.values()
                if kinds.is_user(_heap.type_module(entry[2]))
            ]
            user.sort(key=lambda e: -e[0])
            targets = {id(e[2]): e[2] for e in user[:_heap.PATH_TYPES]}
            del user
            if targets:
                skip = {id(census.objects), id(census.extra), id(sys.modules)}
                for _name, ns, _is_user in namespaces:
                    skip.add(id(ns))
                deadline = time.perf_counter() + _heap.PATH_SECONDS
                paths = _heap.retention_paths(namespaces, targets, skip, names, deadline)
                for tid, path in paths.items():
                    hints.append({"kind": "path", "type": names(targets[tid]),
                                  "path": [clean_text(p) for p in path]})
        except Exception as exc:
            agent.note("path hints skipped: %r" % (exc,))
        for hint in hints:
            for key in ("name", "type"):
                if key in hint:
                    hint[key] = clean_text(hint[key])
        return hints

    def _sites(self):
        """[(frames, count, bytes)] of the live traced blocks, agent's left out."""
        agent = self.agent
        traces = agent.tm.get_traces()
        by_id = {}
        for trace in traces:
            frames = trace[2]
            hit = by_id.get(id(frames))
            if hit is None:
                by_id[id(frames)] = [frames, 1, trace[1]]
            else:
                hit[1] += 1
                hit[2] += trace[1]
        del traces
        dropped = agent.is_agent_traceback
        merged = {}
        for frames, count, size in by_id.values():
            if not frames or dropped(frames):
                continue
            key = frames if len(frames) <= MAX_FRAMES else frames[:MAX_FRAMES]
            prev = merged.get(key)
            if prev is None:
                merged[key] = [count, size]
            else:
                prev[0] += count
                prev[1] += size
        del by_id
        return [(frames, c, b) for frames, (c, b) in merged.items()]
