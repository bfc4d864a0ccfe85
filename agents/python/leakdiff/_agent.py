"""The leakdiff agent inside a CPython process.

Started by the bootstrap ``sitecustomize`` when ``leakdiff record`` runs the
program (see leakdiff-protocol(7)): it says hello on the pipe, starts
recording allocations (on the allocator hooks, see _hooks.py, or with
tracemalloc), answers the snapshot signal and takes a last snapshot at exit.

Everything the agent needs is imported here, before recording starts and
before the first snapshot, so that the agent's own modules neither show up
as allocations nor appear between two snapshots.
"""

import atexit
import gc
import os
import sys
import zlib
import _thread

try:
    from _json import encode_basestring as _json_str
    from _json import make_encoder as _json_encoder
except ImportError:  # pragma: no cover - CPython builds have _json
    _json_encoder = None

try:
    import _signal
except ImportError:  # pragma: no cover
    _signal = None

try:
    import _tracemalloc as _tm_module
    if not (hasattr(_tm_module, "_get_traces")
            and hasattr(_tm_module, "_get_object_traceback")):
        raise ImportError
except ImportError:  # pragma: no cover - every CPython 3.x has it
    _tm_module = None

from . import _containers, _hooks, _paths, _snapshot, _sources, _wire

# atexit handlers run in the thread that imported us at start-up: the main one.
_main_thread = _thread.get_ident()

VERSION = "0.1.0"
AGENT_NAME = "leakdiff-python " + VERSION
ENV_VARS = ("LEAKDIFF_FD", "LEAKDIFF_PIPE", "LEAKDIFF_DEPTH",
            "LEAKDIFF_SIGNAL", "LEAKDIFF_PATH_SECONDS",
            "LEAKDIFF_EXT_DIR", "LEAKDIFF_SAMPLE", "LEAKDIFF_PURE",
            "LEAKDIFF_TRACER", "LEAKDIFF_PEAK", "LEAKDIFF_REQUEST_FD",
            "LEAKDIFF_REQUEST_PIPE", "LEAKDIFF_NATIVE")
DEFAULT_DEPTH = 16
MAX_DEPTH = 1024
LABEL_MAX = 4096
MESSAGE_MAX = 8192
# Peak snapshots: the live bytes are looked at every PEAK_POLL seconds; a new
# one is taken once they passed the last peak by 5%, and at least
# PEAK_MIN_STEP bytes, and then stopped rising.
PEAK_POLL = 0.02
PEAK_MIN_STEP = 64 << 10

# CPython 3.11 cannot find the allocation of objects whose class keeps a
# "managed" dict (python/cpython#101430); _objects.tracebacks_getter() then
# asks the C API for the block at the object's real start.  Only the
# tracemalloc mode needs that: _load_by_address() imports ctypes right
# before tracemalloc starts, so that its modules are there from the first
# snapshot on and its own allocations are not traced.
_BY_ADDRESS = None


def _load_by_address():
    global _BY_ADDRESS
    if sys.version_info[:2] != (3, 11) or sys.implementation.name != "cpython":
        return
    try:
        import ctypes as _ctypes
        _lookup = _ctypes.pythonapi._PyTraceMalloc_GetTraceback
        _lookup.restype = _ctypes.py_object
        _lookup.argtypes = (_ctypes.c_uint, _ctypes.c_size_t)
        _BY_ADDRESS = (_lookup, _ctypes.sizeof(_ctypes.c_void_p))
    except Exception:
        _BY_ADDRESS = None


# The C accelerators' interface numbers this agent was written against.
# A module built from other sources (an old install beside a new agent)
# has another number and is not used: the agent falls back to pure Python
# instead of failing in the middle of a snapshot. Bump both sides together.
# A Map, like all the agent holds: a plain dict here is counted by the
# census as one of the program's (see _containers.py).
EXTENSION_INTERFACES = _containers.Map({"_census": 1, "_sampler": 2})


def load_extension(directory, name):
    """Load the C accelerator ``name`` (``_census``, ``_sampler``) built for
    this interpreter from ``directory``; None when there is none, it does
    not load or it was built for another interface.  Loaded by path so
    that nothing is added to sys.path."""
    if not directory:
        return None
    try:
        # Straight through _imp (always loaded): importlib.machinery, or
        # importlib.util, would be more modules imported into the program,
        # and more objects in its census than under LEAKDIFF_PURE=1.
        import _imp
        bootstrap = sys.modules["_frozen_importlib"]
        for suffix in _imp.extension_suffixes():
            path = os.path.join(directory, name + suffix)
            if not os.path.isfile(path):
                continue
            fullname = "leakdiff." + name
            spec = bootstrap.ModuleSpec(fullname, None, origin=path)
            module = _imp.create_dynamic(spec)
            _imp.exec_dynamic(module)
            if getattr(module, "INTERFACE", None) != EXTENSION_INTERFACES.get(name):
                return None
            sys.modules[fullname] = module
            return module
    except Exception:
        return None
    return None


def _not_json(obj):
    raise TypeError("not JSON serializable: %s" % type(obj).__name__)


def _encode_json(obj):
    """Compact JSON of the agent's documents, as UTF-8 bytes.

    The C encoder of the json package is used directly: importing json
    would import re, enum and more into the traced program.
    """
    if _json_encoder is not None:
        encoder = _json_encoder(None, _not_json, _json_str, None, ":", ",",
                                False, False, False)
        text = "".join(encoder(obj, 0))
    else:  # pragma: no cover
        import json
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                          check_circular=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode(
            "utf-8", "replace").encode("utf-8")


class _Tracemalloc:
    """The few tracemalloc calls the agent needs, on the C module."""

    __slots__ = ("mod", "quiet_ext")

    def __init__(self, mod):
        self.mod = mod
        self.quiet_ext = None   # the _census module once it can keep a thread quiet

    def quiet(self, on):
        """Keep (or stop keeping) the calling thread's allocations out of
        tracemalloc; False when that cannot be done (see _census.quiet)."""
        ext = self.quiet_ext
        return ext is not None and ext.quiet(on)

    def is_tracing(self):
        return self.mod is not None and self.mod.is_tracing()

    def start(self, depth):
        self.mod.start(depth)

    def stop(self):
        self.mod.stop()

    def get_traceback_limit(self):
        return self.mod.get_traceback_limit()

    def get_traces(self):
        return self.mod._get_traces()


def read_environment(environ=None, scrub=True):
    """Read the LEAKDIFF_* settings; remove them from the environment.

    Returns a dict with fd, pipe, depth and signal ("None" where missing or
    malformed).  Exposed for tests and for the bootstrap.
    """
    env = os.environ if environ is None else environ
    raw = {name: env.get(name) for name in ENV_VARS}
    if scrub:
        for name in ENV_VARS:
            if name in env:
                try:
                    del env[name]
                except Exception:
                    pass
    out = {"fd": None, "pipe": None, "depth": DEFAULT_DEPTH, "signal": None,
           "problems": []}
    try:
        fd = int(raw["LEAKDIFF_FD"])
        if fd >= 0:
            out["fd"] = fd
    except (TypeError, ValueError):
        pass
    out["pipe"] = _wire.parse_pipe_id(raw["LEAKDIFF_PIPE"])
    if raw["LEAKDIFF_DEPTH"] not in (None, ""):
        try:
            depth = int(raw["LEAKDIFF_DEPTH"])
            out["depth"] = min(max(depth, 1), MAX_DEPTH)
        except ValueError:
            out["problems"].append("LEAKDIFF_DEPTH=%r is not a number; using %d"
                                   % (raw["LEAKDIFF_DEPTH"], DEFAULT_DEPTH))
    # The retention-path search is bounded in time; a loaded machine (or a
    # test that needs the path) may allow it longer.
    if raw["LEAKDIFF_PATH_SECONDS"] not in (None, ""):
        try:
            seconds = float(raw["LEAKDIFF_PATH_SECONDS"])
            if 0 <= seconds <= 60:
                _paths.PATH_SECONDS = seconds
        except ValueError:
            out["problems"].append("LEAKDIFF_PATH_SECONDS=%r is not a number of seconds"
                                   % (raw["LEAKDIFF_PATH_SECONDS"],))
    # C accelerators: where the recorder says they are, unless a test asks
    # for the pure-Python agent.
    out["ext_dir"] = None if raw["LEAKDIFF_PURE"] else (raw["LEAKDIFF_EXT_DIR"] or None)
    out["sample"] = 0
    if raw["LEAKDIFF_SAMPLE"] not in (None, ""):
        try:
            out["sample"] = max(int(raw["LEAKDIFF_SAMPLE"]), 0)
        except ValueError:
            out["problems"].append("LEAKDIFF_SAMPLE=%r is not a number of bytes; tracking exactly"
                                   % (raw["LEAKDIFF_SAMPLE"],))
    # Which recorder of allocations: the hooks (default) or tracemalloc.
    out["tracer"] = "hooks"
    if raw["LEAKDIFF_TRACER"] not in (None, "", "hooks"):
        if raw["LEAKDIFF_TRACER"] == "tracemalloc":
            out["tracer"] = "tracemalloc"
        else:
            out["problems"].append("LEAKDIFF_TRACER=%r is neither hooks nor tracemalloc; "
                                   "using the hooks" % (raw["LEAKDIFF_TRACER"],))
    out["peak"] = raw["LEAKDIFF_PEAK"] == "1"
    # leakdiff record --native: the native agent is loaded too (_hooks.py).
    out["native"] = raw["LEAKDIFF_NATIVE"] == "1"
    # The recorder's request channel: both or neither.
    out["request_fd"] = out["request_pipe"] = None
    try:
        request_fd = int(raw["LEAKDIFF_REQUEST_FD"])
        request_pipe = _wire.parse_pipe_id(raw["LEAKDIFF_REQUEST_PIPE"])
        if request_fd >= 0 and request_pipe is not None:
            out["request_fd"], out["request_pipe"] = request_fd, request_pipe
    except (TypeError, ValueError):
        pass
    default_signal = getattr(_signal, "SIGUSR2", None)
    if raw["LEAKDIFF_SIGNAL"] in (None, ""):
        out["signal"] = default_signal
    else:
        try:
            out["signal"] = int(raw["LEAKDIFF_SIGNAL"])
        except ValueError:
            out["problems"].append("LEAKDIFF_SIGNAL=%r is not a signal number"
                                   % (raw["LEAKDIFF_SIGNAL"],))
    return out


class Agent:
    """State of the agent in this process (one instance at most).

    All of it lives in __slots__ and in the agent's own container classes
    (Map, Seq and Names of _containers.py), which the census leaves out.
    """

    __slots__ = (
        "wire", "depth", "signum", "lock", "seq", "busy", "taking", "pending", "finished",
        "started_tracing", "handler_installed", "ready", "early_signal", "tm", "agent_name",
        "python_version", "executable", "host", "agent_dirs", "agent_prefixes",
        "boot_file", "agent_files", "agent_modules",
        "stdlib_dirs", "stdlib_prefixes", "resolver", "builder", "_tb_verdicts",
        "use_worker", "census_ext", "peak", "handler_warned", "attached", "request_fd", "on_eof",
    )

    def __init__(self, wire, depth, signum, boot_file):
        self.wire = wire
        self.depth = depth
        self.signum = signum
        self.lock = _thread.RLock()
        self.seq = 0
        self.busy = False
        self.taking = None             # trigger of the snapshot being taken
        self.pending = _containers.Seq()
        self.use_worker = True
        self.finished = False          # exit snapshot done, or forked child
        self.started_tracing = False
        self.handler_installed = False
        self.ready = False             # start() is done: signals take snapshots
        self.early_signal = False      # a signal came before that
        self.tm = _Tracemalloc(_tm_module)
        self.agent_name = AGENT_NAME
        self.python_version = _wire.running_version()
        self.executable = sys.executable or ""
        try:
            self.host = os.uname().nodename
        except Exception:
            self.host = ""
        here = os.path.dirname(os.path.abspath(__file__))
        root = os.path.dirname(here)
        self.agent_dirs = tuple(_unique([root, os.path.realpath(root)]))
        self.agent_prefixes = tuple(d.rstrip(os.sep) + os.sep for d in self.agent_dirs)
        self.boot_file = boot_file
        self.agent_files = _containers.Names()
        self.agent_modules = _containers.Names()
        self.refresh_agent_files()
        self.stdlib_dirs = tuple(_stdlib_dirs())
        self.stdlib_prefixes = tuple(d.rstrip(os.sep) + os.sep for d in self.stdlib_dirs)
        self.resolver = _sources.Resolver(self.stdlib_dirs[0] if self.stdlib_dirs else None)
        self.builder = _snapshot.Builder(self)
        self._tb_verdicts = _containers.Seq((_containers.Map(), _containers.Map()))
        self.census_ext = None         # the _census module, when it loads
        self.peak = None               # [next step, live-bytes reader] with --peak
        self.handler_warned = False
        self.attached = None           # unix time of attach (leakdiff record --pid)
        self.request_fd = None
        self.on_eof = None             # attached: called when the recorder leaves

    # -- identity of the agent's own code --------------------------------

    def refresh_agent_files(self):
        files = set()
        mods = set()
        for name, mod in list(sys.modules.items()):
            if not isinstance(name, str):
                continue
            if name == "leakdiff" or name.startswith("leakdiff."):
                mods.add(name)
                path = getattr(mod, "__file__", None)
                if isinstance(path, str):
                    files.add(path)
        for name in mods:
            mod = sys.modules.get(name)
            for value in list(getattr(mod, "__dict__", {}).values()):
                if type(value) is type(_not_json):
                    files.add(value.__code__.co_filename)
        if self.boot_file:
            files.add(self.boot_file)
            boot = sys.modules.get("sitecustomize")
            if getattr(boot, "__file__", None) == self.boot_file:
                mods.add("sitecustomize")   # ours, not a chained one
        self.agent_files = _containers.Names(files)
        self.agent_modules = _containers.Names(mods)

    def _is_agent_file(self, filename, innermost):
        if filename == self.boot_file:
            return innermost
        if filename in self.agent_files:
            return True
        if not isinstance(filename, str):
            return False
        if filename.startswith(self.agent_prefixes):
            return True
        if innermost and os.path.basename(filename) == "tracemalloc.py":
            return os.path.dirname(filename) in self.stdlib_dirs
        return False

    def is_agent_traceback(self, frames):
        """True for allocations made by the agent (or by tracemalloc.py).

        A traceback is the agent's when any of its frames is in the agent's
        code, except the bootstrap file, which counts only as the innermost
        frame: what the chained sitecustomize allocates belongs to the
        program.
        """
        # Verdicts are cached per file name, one table for the innermost
        # frame and one for the others: a key tuple per frame would be an
        # allocation, traced, for each of thousands of tracebacks.
        inner, outer = self._tb_verdicts
        innermost = True
        for frame in frames:
            name = frame[0]
            verdicts = inner if innermost else outer
            hit = verdicts.get(name)
            if hit is None:
                hit = verdicts[name] = self._is_agent_file(name, innermost)
            if hit:
                return True
            innermost = False
        return False

    def import_roots(self):
        out = []
        for entry in list(sys.path):
            if not isinstance(entry, str) or not entry:
                continue
            if os.path.realpath(entry) in self.agent_dirs or entry in self.agent_dirs:
                continue
            text = _wire.clean_text(entry)
            if text not in out:
                out.append(text)
        return out

    def by_address(self):
        return _BY_ADDRESS

    # -- messages -----------------------------------------------------------

    def live(self):
        return not self.finished and self.wire.alive

    def note(self, message, level="warning"):
        if not self.wire.alive:
            return
        message = _wire.clean_text(message)
        if len(message) > MESSAGE_MAX:
            message = message[:MESSAGE_MAX] + "..."
        try:
            self.wire.send_json("log", {"level": level, "message": message}, _encode_json)
        except Exception:
            self.wire.kill()

    # -- snapshots ------------------------------------------------------------

    def request(self, label, trigger):
        """Take a snapshot now; returns its seq, or None.

        Snapshots are serialised by an RLock.  A request that arrives while
        this thread is already taking one (a signal handler, a __del__ run by
        the collection) is queued and taken right after, never nested.
        """
        if not self.live():
            return None
        self.lock.acquire()
        try:
            if self.busy:
                # A signal that lands during a signal snapshot asks for what
                # is being taken already: queueing it could keep the program
                # in its handler forever when snapshots outlast --every. One
                # that lands during an API snapshot is queued like any other
                # request: the recorder's timer waits for a signal snapshot
                # to answer its request, and would otherwise stop for good.
                absorbed = trigger == "signal" and self.taking == "signal"
                if not absorbed and (label, trigger) not in self.pending:
                    self.pending.append((label, trigger))
                return None
            self.busy = True
            try:
                self.taking = trigger
                seq = self._emit(label, trigger)
                if trigger == "exit":
                    # The last word: requests queued behind it (a timer
                    # signal that raced with exit) would follow the exit
                    # snapshot and confuse anyone reading the run.
                    self.finished = True
                    del self.pending[:]
                while self.pending and self.live():
                    more = self.pending.pop(0)
                    self.taking = more[1]
                    self._emit(*more)
            finally:
                self.busy = False
                self.taking = None
                if not self.live():
                    del self.pending[:]
        finally:
            self.lock.release()
        return seq

    def _emit(self, label, trigger):
        if not self.live():
            return None
        self._check_handler()
        seq = self.seq + 1
        try:
            blob = self._build(seq, label, trigger)
        except Exception as exc:
            self.note("snapshot failed: %s: %s" % (type(exc).__name__, exc))
            return None
        finally:
            notes = self.builder.notes
            while notes:
                self.note(notes.pop(0))
        if blob is None or not self.live():
            return None
        self.seq = seq
        wire = self.wire
        ok = wire.send_json("begin", {"seq": seq, "label": label, "trigger": trigger},
                            _encode_json)
        ok = ok and wire.send_data(blob)
        ok = ok and wire.send_json(
            "end", {"seq": seq, "bytes": len(blob), "crc32": zlib.crc32(blob) & 0xFFFFFFFF},
            _encode_json)
        return seq if ok else None

    def _check_handler(self):
        """Says once when the program has put its own handler in place of
        the agent's for the snapshot signal: that signal, sent to the
        program, then runs the program's handler and takes no snapshot."""
        if not self.handler_installed or self.handler_warned or _signal is None:
            return
        try:
            ours = _signal.getsignal(self.signum) is _on_signal
        except (ValueError, OSError):
            return
        if not ours:
            self.handler_warned = True
            self.note("the program installed its own handler for signal %d, so that signal "
                      "sent to the program itself no longer takes a snapshot (sent to leakdiff "
                      "record, and --every, still do); choose a signal the program leaves alone "
                      "with --signal" % self.signum)

    def _build(self, seq, label, trigger, encode=True):
        """Collect garbage here, then build and encode the document (the
        document itself, a dict, with ``encode`` False).

        The collection runs in the calling thread, as a collection the
        program triggered would, so finalizers see no strange thread.  The
        rest runs on a short-lived worker thread when one can be started:
        every allocation the agent makes is traced by tracemalloc, and the
        cost of that grows with the depth of the Python stack, which is
        shallow on a fresh thread.  The worker only builds bytes; all
        writes to the pipe happen in this thread.
        """
        job = _Job(self.builder, seq, label, trigger)
        job.encode = encode
        token = _next_token()
        start_args = (token,)   # untracked by the collection below
        before = _snapshot.uncollectable_total()
        job.collected = gc.collect()
        job.uncollectable = max(0, _snapshot.uncollectable_total() - before)
        # The build makes many containers (a million traces' tuples on a big
        # heap): automatic collections in the middle of it would walk the
        # whole heap again, for nothing after the collection just made, and
        # could untrack objects the census has already counted.
        automatic = gc.isenabled()
        gc.disable()
        try:
            return self._run_job(job, start_args)
        finally:
            if automatic:
                gc.enable()

    def _run_job(self, job, start_args):
        if self.use_worker:
            done = _allocate_lock()
            done.acquire()
            job.done = done
            _JOBS[start_args[0]] = job
            try:
                _start_new_thread(_worker_main, start_args)
            except Exception:
                _JOBS.pop(start_args[0], None)
                self.use_worker = False
                job.done = None
            else:
                done.acquire()
                return job.outcome()
        _BUILD_LOCK.acquire()
        try:
            job.run()
        finally:
            _BUILD_LOCK.release()
        return job.outcome()


class _Job:
    """One document to build, possibly on a worker thread."""

    __slots__ = ("builder", "seq", "label", "trigger", "collected",
                 "uncollectable", "blob", "error", "done", "encode")

    def __init__(self, builder, seq, label, trigger):
        self.builder = builder
        self.seq = seq
        self.label = label
        self.trigger = trigger
        self.collected = 0
        self.uncollectable = 0
        self.blob = None
        self.error = None
        self.done = None
        self.encode = True

    def run(self):
        # The document is built with the agent's own allocations untraced
        # when the tracer can do that (see quiet() of each).
        tm = self.builder.agent.tm
        quiet = False
        try:
            quiet = tm.quiet(True)
            self.builder.quiet = quiet
            doc = self.builder.take(self.seq, self.label, self.trigger,
                                    self.collected, self.uncollectable)
            attached = getattr(self.builder.agent, "attached", None)
            if attached:
                doc["meta"]["attached"] = round(attached, 3)
            self.blob = _encode_json(doc) if self.encode else doc
            if self.encode and getattr(self.builder, "splice", None) is not None:
                self.blob = self.builder.splice(self.blob, _encode_json)
        except BaseException as exc:
            self.error = exc
        finally:
            if quiet:
                try:
                    tm.quiet(False)
                except BaseException:
                    pass

    def outcome(self):
        error = self.error
        self.error = None
        if error is not None:
            raise error
        return self.blob


_JOBS = _containers.Map()
_BUILD_LOCK = _thread.allocate_lock()
_start_new_thread = _thread.start_new_thread
_allocate_lock = _thread.allocate_lock
_TOKENS = _containers.Seq([0])


def _next_token():
    _TOKENS[0] += 1
    return _TOKENS[0]


def _worker_main(token):
    job = _JOBS.pop(token, None)
    if job is None:
        return
    # acquire/release, not "with": a with statement keeps a bound __exit__
    # method alive, and the census would count it.
    try:
        _BUILD_LOCK.acquire()
        try:
            job.run()
        finally:
            _BUILD_LOCK.release()
    finally:
        job.done.release()


# -- module state and entry points ---------------------------------------------

_agent = None


def _unique(items):
    out = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


def _stdlib_dirs():
    """The standard library directories (what sysconfig calls stdlib and
    platstdlib), found without importing sysconfig."""
    dirs = []
    os_file = getattr(os, "__file__", None)
    if isinstance(os_file, str):
        dirs.append(os.path.dirname(os_file))
    for entry in sys.path:
        if isinstance(entry, str) and os.path.basename(entry.rstrip(os.sep)) == "lib-dynload":
            dirs.append(os.path.dirname(entry.rstrip(os.sep)))
    dirs = [os.path.abspath(d) for d in dirs if d]
    return _unique(dirs + [os.path.realpath(d) for d in dirs])


def _clean_label(label):
    if label is None:
        label = ""
    label = _wire.clean_text(label)
    if len(label) > LABEL_MAX:
        label = label[:LABEL_MAX]
    return label


def _on_signal(signum, frame):
    del frame
    agent = _agent
    if agent is None or not agent.live():
        return
    if not agent.ready:
        agent.early_signal = True   # start() takes it when it is done
        return
    try:
        agent.request("", "signal")
    except Exception:
        pass


def _at_exit():
    agent = _agent
    if agent is None:
        return
    # The program is already on its way out: a second Ctrl-C or kill (or the
    # recorder forwarding a signal the process group already got) must not
    # cut the at-exit snapshot short. Those signals are held off meanwhile.
    held = []
    if _signal is not None and _thread.get_ident() == _main_thread:
        for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
            num = getattr(_signal, name, None)
            if num is None:
                continue
            try:
                held.append((num, _signal.signal(num, _signal.SIG_IGN)))
            except (ValueError, OSError, TypeError):
                pass
    try:
        peak = agent.peak
        if peak is not None and agent.live() and peak[1]() >= peak[0]:
            # The heap is at its highest as the program ends.
            agent.request("peak", "peak")
        if agent.live():
            agent.request("exit", "exit")
    except Exception:
        pass
    finally:
        agent.finished = True
        for num, handler in held:
            try:
                _signal.signal(num, handler)
            except (ValueError, OSError, TypeError):
                pass


_real_os_exit = None


def _os_exit(status):
    """os._exit() while the agent records: it skips atexit handlers, so
    the at-exit snapshot is taken here first (the interpreter can still run
    code), then the process ends through the real os._exit(). In a forked
    child the agent is finished and this only ends the process."""
    try:
        agent = _agent
        if agent is not None and agent.live():
            _at_exit()
    finally:
        _real_os_exit(status)


def _wrap_os_exit():
    global _real_os_exit
    if _real_os_exit is None:
        _real_os_exit = os._exit
        _os_exit.__doc__ = _real_os_exit.__doc__
        os._exit = _os_exit


def _after_fork_child():
    agent = _agent
    if agent is None:
        return
    try:
        agent.finished = True
        wire = agent.wire
        if wire.alive:
            # The child must neither write into nor hold open the parent's
            # stream; close our descriptor if it still is the pipe.
            try:
                st = os.fstat(wire.fd)
                if st.st_dev == wire.dev and st.st_ino == wire.ino:
                    os.close(wire.fd)
            except OSError:
                pass
        wire.kill()
        if agent.on_eof is not None and agent.request_fd is not None:
            # Attached: the child has no request thread; the FIFO is the parent's.
            try:
                os.close(agent.request_fd)
            except OSError:
                pass
            agent.request_fd = None
        del agent.pending[:]
        agent.lock = _thread.RLock()
        agent.busy = False
        agent.taking = None
        if agent.started_tracing and agent.tm.is_tracing():
            agent.tm.stop()
        if agent.handler_installed and _signal is not None:
            if _signal.getsignal(agent.signum) is _on_signal:
                _signal.signal(agent.signum, _signal.SIG_DFL)
    except Exception:
        pass


_FORK_HOOK = _containers.Seq()


def active():
    agent = _agent
    return agent is not None and agent.live()


def api_snapshot(label=""):
    """leakdiff.snapshot(): seq of the snapshot taken, or None."""
    agent = _agent
    if agent is None or not agent.live():
        return None
    try:
        return agent.request(_clean_label(label), "api")
    except Exception:
        return None


def start(config=None, boot_file=None, attached=None, on_eof=None):
    """Start the agent; returns True when it is recording.

    ``config`` is what read_environment() returned (the bootstrap reads and
    scrubs the environment before importing this module); without it the
    environment is read here. ``attached`` (the time of attach) and
    ``on_eof`` (called by the request thread once the recorder closed the
    request channel) are for an agent attached to a running process, see
    _attach.py.
    """
    global _agent
    if _agent is not None:
        return _agent.live()
    if config is None:
        config = read_environment()
    fd = config.get("fd")
    pipe = config.get("pipe")
    if fd is None or pipe is None:
        return False
    wire = _wire.Wire(fd, pipe[0], pipe[1])
    if not wire.owns_fd():
        return False
    try:
        os.set_inheritable(fd, False)
    except OSError:
        wire.kill()
        return False

    agent = Agent(wire, config.get("depth") or DEFAULT_DEPTH, config.get("signal"), boot_file)
    agent.attached = attached
    agent.on_eof = on_eof
    _agent = agent
    # The census and trace grouping in C, when built for this interpreter
    # (loaded before tracemalloc starts, like the rest of the agent).
    agent.census_ext = load_extension(config.get("ext_dir"), "_census")
    if hasattr(os, "register_at_fork") and not _FORK_HOOK:
        os.register_at_fork(after_in_child=_after_fork_child)
        _FORK_HOOK.append(True)     # once per process, whatever attaches follow

    hello = {
        "protocol": "leakdiff-pipe", "version": 1, "runtime": "python",
        "agent": AGENT_NAME, "pid": os.getpid(),
        "python": agent.python_version,
    }
    if _start_requests(agent, config):
        hello["requests"] = True
    if attached:
        hello["attached"] = True
    if agent.executable:
        hello["executable"] = _wire.clean_text(agent.executable)
    # The handler goes in before the hello: once the recorder has read it,
    # its --every timer may send the signal at any moment, and the default
    # action would kill the program.
    signal_problem = _install_signal(agent)
    if not wire.send_json("hello", hello, _encode_json):
        agent.finished = True
        if agent.handler_installed and _signal.getsignal(agent.signum) is _on_signal:
            _signal.signal(agent.signum, _signal.SIG_DFL)
        return False
    for problem in config.get("problems") or ():
        agent.note(problem)
    if signal_problem:
        agent.note(signal_problem)

    tm = agent.tm
    if _hooks.start(agent, config, load_extension, agent.python_version):
        pass    # sites from the allocator hooks; tracemalloc stays off
    elif tm.mod is None:
        agent.note("tracemalloc is not available; allocation sites are not recorded")
    elif tm.is_tracing():
        agent.depth = tm.get_traceback_limit()
        _load_by_address()
    else:
        ext = agent.census_ext
        _load_by_address()
        try:
            if ext is not None:
                ext.arm(False)      # the allocators tracemalloc is to wrap
            tm.start(agent.depth)
            agent.started_tracing = True
            if ext is not None and ext.arm(True):
                tm.quiet_ext = ext  # quiet snapshots possible from now on
        except Exception as exc:
            agent.note("could not start tracemalloc: %s" % (exc,))

    atexit.register(_at_exit)
    agent.ready = True
    if agent.early_signal:
        _on_signal(agent.signum, None)
    _wrap_os_exit()
    if config.get("peak"):
        _start_peak(agent)
    return agent.live()


def _start_requests(agent, config):
    """Starts the thread that reads the recorder's request channel; True
    when it runs.  It blocks in read() until the recorder, which waits for
    the hello, asks for something."""
    fd, pipe = config.get("request_fd"), config.get("request_pipe")
    if fd is None or pipe is None:
        return False
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != tuple(pipe):
            return False
        os.set_inheritable(fd, False)
        agent.request_fd = fd
        _start_new_thread(_request_main, (agent, fd, st.st_dev, st.st_ino))
    except Exception:
        return False
    return True


def _request_main(agent, fd, dev, ino):
    """The agent's request thread: takes the snapshots the recorder asks for
    (lines "snapshot interval" and "snapshot signal", see
    leakdiff-protocol(7)), in this thread, as leakdiff.snapshot() called
    from a thread of the program would.  It stops when the recorder closes
    the channel or the descriptor is no longer the channel: the program
    closed it, and what it reads there now is not the agent's."""
    pending = b""
    nap = None
    try:
        while agent.live():
            st = os.fstat(fd)
            if st.st_dev != dev or st.st_ino != ino:
                return
            chunk = os.read(fd, 256)
            if not chunk:
                return
            pending += chunk
            # A request can come as soon as the hello is out, before
            # start() has put the tracer in place (an attached recorder
            # asks for its first snapshot at once): it waits for that.
            while not agent.ready and agent.live():
                if nap is None:
                    nap = _allocate_lock()
                    nap.acquire()
                nap.acquire(True, 0.005)
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                if line == b"snapshot interval":
                    agent.request("", "interval")
                elif line == b"snapshot signal":
                    agent.request("", "signal")
                # anything else is for a later agent
            pending = pending[-64:]
    except Exception:
        pass
    finally:
        # Attached: the recorder closed its end, or died. Either way it is
        # time to leave the process.
        if agent.on_eof is not None and _agent is agent:
            try:
                agent.on_eof()
            except Exception:
                pass


def _live_bytes_reader(agent):
    """A function returning the live bytes the agent records, or None when
    it cannot tell them (sampling, no tracer)."""
    tm = agent.tm
    ext = getattr(tm, "ext", None)
    if ext is not None:
        if getattr(tm, "mean", 0) or not hasattr(ext, "live_bytes"):
            return None
        return ext.live_bytes
    mod = tm.mod
    if mod is not None and mod.is_tracing() and hasattr(mod, "get_traced_memory"):
        get = mod.get_traced_memory
        return lambda: get()[0]
    return None


def _start_peak(agent):
    read = _live_bytes_reader(agent)
    if read is None:
        agent.note("peak snapshots need the live bytes of every allocation, which this agent "
                   "does not have here (sampling, or no tracer); they are off")
        return
    agent.peak = _containers.Seq([PEAK_MIN_STEP, read])
    try:
        _start_new_thread(_peak_main, (agent, read))
    except Exception as exc:
        agent.peak = None
        agent.note("cannot start the agent's peak thread: %s; peak snapshots are off" % (exc,))


def _peak_main(agent, read):
    """The agent's peak thread: looks at the live bytes every PEAK_POLL
    seconds and takes the "peak" snapshot at the first look that finds them
    no longer rising after they passed the step (agent.peak[0]). A program
    that holds its peak for longer than that gets a snapshot of exactly its
    peak."""
    nap = _allocate_lock()
    nap.acquire()
    peak = agent.peak
    high = last = 0
    passed = False
    try:
        while agent.live():
            nap.acquire(True, PEAK_POLL)    # a sleep that imports nothing
            now = read()
            if now >= peak[0]:
                passed = True
            if now > high:
                high = now
            if passed and now <= last:
                agent.request("peak", "peak")
                peak[0] = high + max(high // 20, PEAK_MIN_STEP)
                passed = False
                now = read()
            last = now
    except Exception:
        pass


def _install_signal(agent):
    """Installs the snapshot signal's handler; returns None, or what went
    wrong, for the caller to note once the hello is out."""
    signum = agent.signum
    if signum is None or _signal is None:
        return None
    try:
        current = _signal.getsignal(signum)
    except (ValueError, OSError) as exc:
        return "signal %r cannot be used for snapshots: %s" % (signum, exc)
    if current != _signal.SIG_DFL:
        return ("signal %d already has a handler in this program; "
                "snapshots on signal are off" % signum)
    try:
        _signal.signal(signum, _on_signal)
        agent.handler_installed = True
    except (ValueError, OSError, RuntimeError) as exc:
        return "could not install the handler of signal %d: %s" % (signum, exc)
    return None
