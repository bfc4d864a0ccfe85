"""Sampled allocation sites: ``leakdiff record --sample=BYTES`` for Python.

Instead of tracemalloc, which captures a traceback for every allocation,
the C extension ``_sampler`` hooks the MEM and OBJ allocators (PEP 445)
and keeps a Poisson sample of the blocks by bytes: a block of n bytes is
picked with probability p = 1 - exp(-n / BYTES) and stands for 1/p blocks
and n/p bytes.  The sites of the snapshot are those estimates, in the
shape the exact mode gives them, and meta.sample says so.

Without the extension (another interpreter, a build without Python.h,
LEAKDIFF_PURE) the agent tracks exactly and says why.
"""

from . import _heap, _snapshot


class Tracer:
    """Stands in for the agent's tracemalloc wrapper while sampling."""

    __slots__ = ("ext", "depth", "mean")

    def __init__(self, ext, depth, mean):
        self.ext = ext
        self.depth = depth
        self.mean = mean

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


class Builder(_snapshot.Builder):
    """The exact mode's builder, with sites from the sample."""

    __slots__ = ()

    def take(self, *args, **kwargs):
        doc = _snapshot.Builder.take(self, *args, **kwargs)
        doc["meta"]["sample"] = int(self.agent.tm.mean)
        return doc

    def _type_sites(self, census, kinds, names):
        """Type by site from the picked blocks that are objects.

        The types are those the exact mode looks up (the program's own,
        then the TOP_TYPES most numerous), every instance of them, with no
        budget: finding an object's block in the sampler's table is cheap.
        Each picked instance stands for 1/p instances and its shallow size
        for as many bytes, so the rows are estimates like the sites; types
        of small objects may have none.
        """
        agent = self.agent
        ext = agent.tm.ext
        members = getattr(census, "members", None)
        if members is None:
            members = census.groups.get
        ranked = sorted(census.totals.items(), key=lambda kv: -kv[1][0])
        wanted = [t for t, _ in ranked if kinds.is_user(_heap.type_module(t))]
        chosen = set(wanted)
        wanted.extend(t for t, _ in ranked[:_heap.TOP_TYPES] if t not in chosen)
        del ranked, chosen
        stacks = _heap.Map()
        dropped = agent.is_agent_traceback
        groups = {}
        for t in wanted:
            group = members(t)
            if not group:
                continue
            hits = ext.picked(group)
            if not hits:
                continue
            objs = _heap.Seq(group[i] for i, _stack, _w in hits)
            const = census.const.get(t)
            sizes = [const] * len(objs) if const is not None else list(_heap.sizes_of(t, objs))
            del group, objs
            name = names(t)
            for (_i, stack, w), size in zip(hits, sizes):
                frames = stacks.get(stack)
                if frames is None:
                    frames = stacks[stack] = ext.frames(stack)
                if not frames or dropped(frames):
                    continue
                key = (name, frames)
                acc = groups.get(key)
                if acc is None:
                    groups[key] = [w, w * size]
                else:
                    acc[0] += w
                    acc[1] += w * size
            del hits, sizes
        stacks.clear()
        return {k: [max(1, int(c + 0.5)), int(b + 0.5)] for k, (c, b) in groups.items()}, {}

    def _sites(self):
        """[(frames, count, bytes)] estimated, the agent's own left out.

        Stacks that differ only in instruction offsets share their lines;
        their estimates are added up before rounding.  A site never shows
        fewer blocks than were picked there.
        """
        agent = self.agent
        rows = agent.tm.ext.sites()
        dropped = agent.is_agent_traceback
        merged = _heap.Map()
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
        return out


def start(agent, config, load_extension, python_version):
    """Switch the agent to sampled sites when config asks for them.

    Returns True when the sampler runs (agent.tm and agent.builder are
    replaced); False when the agent should track exactly, after a note
    saying why sampling is off.
    """
    mean = config.get("sample") or 0
    if mean <= 0:
        return False
    ext = load_extension(config.get("ext_dir"), "_sampler")
    if ext is None:
        if not config.get("ext_dir"):
            why = "the pure-Python agent cannot sample"
        else:
            why = "no _sampler extension loads in Python %s" % (python_version,)
        agent.note("--sample is unavailable: %s; tracking every allocation with "
                   "tracemalloc instead" % why)
        return False
    tracer = Tracer(ext, agent.depth, mean)
    try:
        tracer.start(agent.depth)
    except Exception as exc:
        agent.note("--sample is unavailable: %s; tracking every allocation with "
                   "tracemalloc instead" % (exc,))
        return False
    agent.tm = tracer
    agent.builder = Builder(agent)
    agent.started_tracing = True
    return True
