"""Snapshots taken and kept inside the process, without ``leakdiff record``.

The pytest plugin (pytest_plugin.py) needs the same documents the agent
streams to the recorder, but it is the program itself asking, and it wants
them back as bytes rather than on a pipe.  A Session is an Agent of its own
whose "wire" only keeps the agent's notes; it records allocations on the
allocator hooks when the _sampler extension loads, on tracemalloc
otherwise, exactly as _agent.start() chooses.  When the process is already
being recorded, the running agent's tracer is shared instead of a second
one being started.

``caller_file`` names the code that drives the session (the plugin): an
allocation whose innermost frame is there is the driver's own, but one
made further down, by the test the driver called, is the program's.  That
is the rule the agent applies to its bootstrap file, and the session
passes the driver as that file.
"""

import sys

from . import _agent, _containers, _hooks, _paths


class _Keeper:
    """Stands in for _wire.Wire: keeps the notes the agent would send."""

    __slots__ = ("alive", "notes")

    def __init__(self):
        self.alive = True
        self.notes = _containers.Seq()

    def send_json(self, tag, obj, encode):
        del encode
        if tag == "log":
            self.notes.append(obj.get("message", ""))
        return True

    def kill(self):
        self.alive = False


class Session:
    """Allocation recording plus snapshots on demand, in this process.

    Create it once (it starts recording), call snapshot() as often as
    needed, close() when done.  Nothing here prints; notes() hands back
    what the agent would have logged.
    """

    def __init__(self, depth=_agent.DEFAULT_DEPTH, ext_dir=None, tracer="hooks",
                 caller_file=None):
        self.agent = agent = _agent.Agent(_Keeper(), depth, None, caller_file)
        self.seq = 0
        self.owned = False      # True when this session started the tracer
        # True under leakdiff record: the recorder's agent may snapshot
        # the process at any time, so the heap must stay as it finds it
        # (the pytest plugin does not freeze it then).
        self.shared = False
        running = _agent._agent
        if running is not None and running.live():
            self.shared = True
            agent.census_ext = running.census_ext
            agent.tm = running.tm
            agent.depth = running.depth
            agent.builder = type(running.builder)(agent)
            return
        agent.census_ext = _loaded(ext_dir, "_census")
        config = {"ext_dir": ext_dir, "sample": 0, "tracer": tracer}
        if _hooks.start(agent, config, _loaded, agent.python_version):
            self.owned = True
            return
        tm = agent.tm
        if tm.mod is None:
            agent.note("tracemalloc is not available; allocation sites are not recorded")
        elif tm.is_tracing():
            agent.depth = tm.get_traceback_limit()
            _agent._load_by_address()
        else:
            ext = agent.census_ext
            _agent._load_by_address()
            try:
                if ext is not None:
                    ext.arm(False)
                tm.start(agent.depth)
                self.owned = agent.started_tracing = True
                if ext is not None and ext.arm(True):
                    tm.quiet_ext = ext
            except Exception as exc:
                agent.note("could not start tracemalloc: %s" % (exc,))

    def tracer(self):
        """"hooks", "tracemalloc" or "none": what records the sites."""
        tm = self.agent.tm
        if isinstance(tm, _hooks.Tracer):
            return "hooks"
        return "tracemalloc" if tm.is_tracing() else "none"

    def refresh(self):
        """Learn the agent modules imported since (the plugin, say)."""
        self.agent.refresh_agent_files()

    def snapshot(self, label="", paths=True, type_sites=True, hints=True, encode=True):
        """A leakdiff-snapshot(5) document, as uncompressed JSON bytes
        (with ``encode`` False, the document as a dict: see encode()).

        Collects garbage first, like every snapshot of the agent.  With
        ``paths`` False the search for retention paths, the dearest part
        of a snapshot, is skipped: a caller comparing a series of snapshots
        only shows the paths of the last.  ``type_sites`` False leaves out
        the type x site table and ``hints`` False every hint (paths
        included): what remains, the types and the sites, is what tells
        whether something grew, at a fraction of the cost.  Raises what
        the build raised; the caller owns the bytes.
        """
        self.seq += 1
        agent = self.agent
        budget = _paths.PATH_SECONDS
        if not paths:
            _paths.PATH_SECONDS = 0
        builder = agent.builder
        if not (type_sites and hints):
            builder.light = _containers.Names(
                (() if type_sites else ("type_sites",)) + (() if hints else ("hints",)))
        try:
            return agent._build(self.seq, _agent._clean_label(label), "api", encode)
        finally:
            _paths.PATH_SECONDS = budget
            builder.light = ()
            notes = builder.notes
            while notes:
                agent.note(notes.pop(0))

    def quiet(self, on):
        """Stop (True) or resume (False) recording what the calling thread
        allocates, where the tracer can (it is what a snapshot's own work
        does): the caller's comparisons of documents then cost no
        allocation tracebacks.  Returns whether recording is off.  One
        thread at a time; pair every quiet(True) with quiet(False)."""
        try:
            return bool(self.agent.tm.quiet(on))
        except Exception:
            return False

    def notes(self):
        """The agent's notes so far, taken out of the session."""
        kept = self.agent.wire.notes
        out = list(kept)
        del kept[:]
        return out

    def close(self):
        """Stop the tracer this session started (not a recorder's)."""
        if self.owned:
            self.owned = False
            try:
                self.agent.tm.stop()
            except Exception:
                pass


def encode(doc):
    """The JSON bytes of a document snapshot(encode=False) returned."""
    return _agent._encode_json(doc)


def _loaded(directory, name):
    """The extension `name` when an agent loaded it already, else load it
    from `directory` (see _agent.load_extension)."""
    module = sys.modules.get("leakdiff." + name)
    if module is not None:
        if getattr(module, "INTERFACE", None) == _agent.EXTENSION_INTERFACES.get(name):
            return module
        return None
    return _agent.load_extension(directory, name)
