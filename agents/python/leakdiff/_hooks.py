"""Allocation sites on the interpreter's allocator hooks.

The C extension ``_sampler`` wraps the MEM and OBJ allocators (PEP 445) and
keeps, for each live block it picked, the block's size and the stack that
allocated it.  A stack is taken from the interpreter's own frame records
and interned in C, so recording a block makes no Python object; that is
why this costs a small fraction of what tracemalloc costs at the same
depth.

By default every block is picked: the agent's exact mode.  With
``leakdiff record --sample=BYTES`` the extension keeps a Poisson sample by
bytes instead: a block of n bytes is picked with probability
p = 1 - exp(-n / BYTES) and stands for 1/p blocks and n/p bytes.  The sites
of the snapshot are then estimates, in the shape exact mode gives them,
and meta.sample says so.

The agent uses tracemalloc instead (see start()) when the program runs it
already, when the user asks for it (``--tracemalloc``: it also sees the raw
domain and memory reported with PyTraceMalloc_Track), or when the extension
does not load (another interpreter, a build without Python.h,
LEAKDIFF_PURE).  A --sample that cannot be honoured says so.

With ``leakdiff record --native`` the native agent is in the process too
and tracks the malloc family; the extension tells it the Python stack of
each native block and leaves the blocks of Python's own allocators to the
hooks (see the end of sampler.c).  Each snapshot then carries the native
agent's raw document of its sites in front of the Python one, with the
frames of the Python stacks those sites name; the recorder symbolises the
native frames and joins each site's two halves (formats/mixed.c).
"""

import os
import sys

from . import _containers, _objects, _sizes, _snapshot, _typeinfo

# Modules whose big buffers come from malloc and are reported to tracemalloc
# with PyTraceMalloc_Track, which the hooks cannot see.
TRACKED_ELSEWHERE = ("numpy",)


class Tracer:
    """Stands in for the agent's tracemalloc wrapper on the hooks."""

    __slots__ = ("ext", "depth", "mean")

    def __init__(self, ext, depth, mean):
        self.ext = ext
        self.depth = depth
        self.mean = mean        # 0: every block

    def is_tracing(self):
        return self.ext.is_on()

    def start(self, depth):
        self.ext.start(float(self.mean), depth)

    def stop(self):
        self.ext.stop()

    def get_traceback_limit(self):
        return self.depth

    def get_traces(self):
        return []

    def quiet(self, on):
        return self.ext.quiet(on)


class Builder(_snapshot.Builder):
    """The snapshot builder, with sites and type sites from the hooks."""

    __slots__ = ("told", "native", "pinned_ids", "native_part")

    def __init__(self, agent, native=False):
        _snapshot.Builder.__init__(self, agent)
        self.told = False
        self.native = native        # the native agent is attached (--native)
        self.pinned_ids = ()        # stack ids of the rows _sites() added for it
        self.native_part = None     # (raw document, python stacks) for splice()

    def take(self, seq, label, trigger, *args, **kwargs):
        if not self.told and not self.native:
            found = [m for m in TRACKED_ELSEWHERE if m in sys.modules]
            if found:
                self.told = True
                self.note("%s is loaded: the data of its arrays is allocated outside Python's "
                          "allocators and is in no allocation site (the object census still "
                          "counts it); record with --tracemalloc to see it by site"
                          % found[0])
        doc = _snapshot.Builder.take(self, seq, label, trigger, *args, **kwargs)
        if trigger == "exit":
            # No snapshot follows: recording the interpreter's teardown
            # would only cost time. Stopping costs nothing here.
            self.agent.tm.stop()
        meta = doc["meta"]
        meta["tracer"] = "hooks"
        if self.agent.tm.mean:
            meta["sample"] = int(self.agent.tm.mean)
        if self.native:
            self._take_native(doc)
        return doc

    def _take_native(self, doc):
        """Moves the rows _sites() added for the Python stacks of native
        blocks out of the sites, as [stack id, [frame number, ...]], and
        fetches the native agent's document to go with them."""
        ids, self.pinned_ids = self.pinned_ids, ()
        stacks = []
        if ids:
            rows = doc["sites"][-len(ids):]
            del doc["sites"][-len(ids):]
            stacks = [[i, row[2]] for i, row in zip(ids, rows)]
        raw = self.agent.tm.ext.native_document()
        self.native_part = (raw, stacks) if raw else None

    def splice(self, blob, encode):
        """The encoded document with the native agent's part in front:
        {"native": RAW, "python_stacks": [...], ...the Python document}.
        The recorder reads the first two members and the rest as an
        ordinary snapshot (leakdiff-protocol(7))."""
        part, self.native_part = self.native_part, None
        if part is None or blob[:1] != b"{":
            return blob
        raw, stacks = part
        return b"".join((b'{"native":', raw, b',"python_stacks":', encode(stacks), b",", blob[1:]))

    def _type_sites(self, census, kinds, names):
        """Type by site from the recorded blocks that are objects.

        The types are those tracemalloc mode looks up (the program's own,
        then the TOP_TYPES most numerous), every instance of them, with no
        budget: finding an object's block in the extension's table is
        cheap, and the sums are made in C.  When sampling, each picked
        instance stands for 1/p instances and its shallow size for as many
        bytes, so the rows are estimates like the sites; types of small
        objects may then have none.
        """
        agent = self.agent
        ext = agent.tm.ext
        every = not agent.tm.mean
        members = getattr(census, "members", None)
        if members is None:
            members = census.groups.get
        ranked = sorted(census.totals.items(), key=lambda kv: -kv[1][0])
        wanted = [t for t, _ in ranked if kinds.is_user(_typeinfo.type_module(t))]
        chosen = set(wanted)
        wanted.extend(t for t, _ in ranked[:_objects.TOP_TYPES] if t not in chosen)
        del ranked, chosen
        stacks = _containers.Map()
        dropped = agent.is_agent_traceback
        groups = {}
        for t in wanted:
            group = members(t)
            if not group:
                continue
            const = census.const.get(t)
            if const is not None:
                rows = ext.tally(group, const)
            else:
                if not every:
                    # Sizes only for the few picked instances.
                    group = _containers.Seq(group[i] for i, _stack, _w in ext.picked(group))
                rows = ext.tally(group, _sizes.sizes_of(t, group)) if group else ()
            del group
            name = names(t)
            for stack, count, size, _picked in rows:
                frames = stacks.get(stack)
                if frames is None:
                    frames = stacks[stack] = ext.frames(stack)
                if not frames or dropped(frames):
                    continue
                _objects.add_counts(groups, (name, frames), count, size)
            del rows
        stacks.clear()
        return {k: [max(1, int(c + 0.5)), int(b + 0.5)] for k, (c, b) in groups.items()}, {}

    def _instances_at(self, t, group, site):
        """The ids of the instances in group recorded at site (the frames
        _type_sites gives), as a Names; under sampling, of the picked ones."""
        ext = self.agent.tm.ext
        stacks = _containers.Map()
        ids = _containers.Seq()
        for i, stack, _w in ext.picked(group):
            hit = stacks.get(stack)
            if hit is None:
                hit = stacks[stack] = ext.frames(stack) == site
            if hit:
                ids.append(id(group[i]))
        stacks.clear()
        return _containers.Names(ids)

    def _sites(self):
        """[(frames, count, bytes)] of the recorded blocks, the agent's left out.

        Stacks that differ only in instruction offsets share their lines;
        their sums are added up before rounding.  A site never shows
        fewer blocks than were picked there.
        """
        agent = self.agent
        rows = agent.tm.ext.sites()
        dropped = agent.is_agent_traceback
        merged = _containers.Map()
        for frames, count, size, picked in rows:
            if not frames or dropped(frames):
                continue
            hit = merged.get(frames)
            if hit is None:
                merged[frames] = [count, size, picked]
            else:
                hit[0] += count
                hit[1] += size
                hit[2] += picked
        del rows
        out = [(frames, max(int(c + 0.5), n), int(b + 0.5)) for frames, (c, b, n) in merged.items()]
        merged.clear()
        if self.native:
            # Empty rows whose frames get numbers with the rest; _take_native
            # takes them out again.
            pinned = agent.tm.ext.pinned()
            self.pinned_ids = [i for i, _frames in pinned]
            out.extend((frames, 0, 0) for _i, frames in pinned)
        return out


NATIVE_LIBRARY = "libleakdiff-preload.so"


def _scrub_native_environment():
    """Take the native agent out of the environment programs started from
    here inherit: the native agent leaves it in place so that a wrapper's
    exec brings it into the interpreter (see mixed.c)."""
    env = os.environ
    try:
        env.pop("LEAKDIFF_NATIVE_MIXED", None)
        preload = env.get("LD_PRELOAD")
        if preload:
            kept = [p for p in preload.replace(" ", ":").split(":")
                    if p and os.path.basename(p) != NATIVE_LIBRARY]
            if kept:
                env["LD_PRELOAD"] = ":".join(kept)
            else:
                del env["LD_PRELOAD"]
    except Exception:
        pass


def start(agent, config, load_extension, python_version):
    """Record on the hooks when that is possible and wanted.

    Returns True when the extension runs (agent.tm and agent.builder are
    replaced); False when the agent should use tracemalloc, after a note
    saying why when the user asked for --sample.
    """
    mean = config.get("sample") or 0
    if config.get("native"):
        _scrub_native_environment()
    if not mean and (config.get("tracer") == "tracemalloc" or agent.tm.is_tracing()):
        if config.get("native"):
            agent.note("--native needs the allocator hooks, and tracemalloc is already on in "
                       "this program; native allocations are not recorded")
        return False    # asked for, or the program's own (-X tracemalloc)
    ext = load_extension(config.get("ext_dir"), "_sampler")
    why = None
    if ext is None:
        if not config.get("ext_dir"):
            why = "the pure-Python agent cannot sample"
        else:
            why = "no _sampler extension loads in Python %s" % (python_version,)
    else:
        tracer = Tracer(ext, agent.depth, mean)
        try:
            tracer.start(agent.depth)
        except Exception as exc:
            why = str(exc)
    if why is not None:
        if mean:
            agent.note("--sample is unavailable: %s; tracking every allocation with "
                       "tracemalloc instead" % why)
        if config.get("native"):
            agent.note("--native needs the allocator hooks (CPython 3.9 to 3.13 with the "
                       "agent's C extension): %s; native allocations are not recorded" % why)
        return False
    native = False
    if config.get("native"):
        attach = getattr(ext, "hybrid_attach", None)
        try:
            native = bool(attach and attach())
        except Exception:
            native = False
        if not native:
            agent.note("--native: the native agent is not in this process (a program that "
                       "empties LD_PRELOAD, or a static interpreter); only Python's allocators "
                       "are recorded")
    agent.tm = tracer
    agent.builder = Builder(agent, native)
    agent.started_tracing = True
    return True
