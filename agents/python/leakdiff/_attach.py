"""The Python agent attached to a running process (``leakdiff record --pid``).

The bootstrap (boot/leakdiff_attach.py) calls start() in the main thread.
The recorder made a private directory with two FIFOs (the attach contract,
see leakdiff-protocol(7)): ``events``, where the agent writes the usual
stream, and ``requests``, where the recorder asks for snapshots. Both are
already open on the recorder's side, so opening them here never blocks.

The agent then runs as under ``leakdiff record`` with three differences:
its hello says ``"attached": true`` and each snapshot's meta has the time
of attach (allocation sites cover only what was allocated since then; the
census, hints and retention paths see every object); no signal handler is
installed (requests come through the FIFO); and it detaches by itself when
the recorder closes the request FIFO or goes away: the allocator hooks come
out, its threads end, its tables are released and both FIFOs are closed.
"""

import atexit
import os
import sys
import time
import _thread

from . import _agent

_LOCK = _thread.allocate_lock()


def parse(settings):
    """The attach settings string (``out=PATH,in=PATH,depth=N,...``) as a
    dict of str; keys repeated take the last value."""
    out = {}
    for item in (settings or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key:
            out[key] = value
    return out


def _open(path, flags):
    fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        raise
    return fd


def start(settings, boot_file=None):
    """Opens the FIFOs named in settings and starts the agent on them;
    True when it records. A detach still under way finishes first, so an
    attach right after another one gets a fresh agent."""
    opts = parse(settings)
    out, into = opts.get("out"), opts.get("in")
    if not out or not into:
        return False
    _LOCK.acquire()
    try:
        if _agent.active():
            return False    # another recorder is attached
        _forget_stale()
        # The agent was imported in the loader's thread, not the main one:
        # its at-exit snapshot holds off signals only in the main thread.
        threading = sys.modules.get("threading")
        if threading is not None:
            try:
                _agent._main_thread = threading.main_thread().ident
            except Exception:
                pass
        wfd = rfd = None
        try:
            wfd = _open(out, os.O_WRONLY)
            rfd = _open(into, os.O_RDONLY)
            wst, rst = os.fstat(wfd), os.fstat(rfd)
        except OSError:
            for fd in (wfd, rfd):
                if fd is not None:
                    os.close(fd)
            return False
        config = {
            "fd": wfd, "pipe": (wst.st_dev, wst.st_ino),
            "request_fd": rfd, "request_pipe": (rst.st_dev, rst.st_ino),
            "depth": _agent.DEFAULT_DEPTH, "signal": None, "problems": [],
            "ext_dir": opts.get("ext") or None, "sample": 0, "tracer": "hooks",
            "peak": opts.get("peak") == "1",
        }
        try:
            config["depth"] = min(max(int(opts.get("depth", _agent.DEFAULT_DEPTH)), 1), _agent.MAX_DEPTH)
        except ValueError:
            pass
        try:
            config["sample"] = max(int(opts.get("sample", 0)), 0)
        except ValueError:
            pass
        if opts.get("tracer") == "tracemalloc":
            config["tracer"] = "tracemalloc"
        ok = False
        try:
            ok = _agent.start(config, boot_file=boot_file, attached=time.time(), on_eof=detach)
        finally:
            # An agent that got as far as taking the descriptors closes them.
            if not ok and not _end_agent():
                for fd in (wfd, rfd):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        return ok
    finally:
        _LOCK.release()


def detach():
    """Leaves the process: called by the request thread when the recorder
    closed the request FIFO (or died)."""
    _LOCK.acquire()
    try:
        _end_agent()
    finally:
        _LOCK.release()


def _forget_stale():
    """Forgets an agent that no longer records (one whose recorder went
    away before it could detach), so that a new one may start."""
    agent = _agent._agent
    if agent is not None and not agent.live():
        _agent._agent = None


def _end_agent():
    """Ends the attached agent: no more snapshots, the allocator hooks out
    (or tracemalloc stopped), its threads told to end, the at-exit hooks
    undone, both channels closed and every table released; the program
    goes on as before the attach. True when there was an agent to end (it
    closed its descriptors), False when there was none."""
    agent = _agent._agent
    if agent is None:
        return False
    # A snapshot under way (the program's own leakdiff.snapshot()) ends first.
    agent.lock.acquire()
    try:
        agent.finished = True
        del agent.pending[:]
    finally:
        agent.lock.release()
    try:
        atexit.unregister(_agent._at_exit)
    except Exception:
        pass
    real_exit = _agent._real_os_exit
    if real_exit is not None and os._exit is _agent._os_exit:
        os._exit = real_exit
        _agent._real_os_exit = None
    tm = agent.tm
    try:
        ext = getattr(tm, "ext", None)
        if ext is not None and hasattr(ext, "detach"):
            ext.detach()
        elif agent.started_tracing and tm.is_tracing():
            tm.stop()
    except Exception:
        pass
    agent.started_tracing = False
    wire = agent.wire
    for fd in (wire.fd, agent.request_fd):
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            pass
    wire.kill()
    agent.request_fd = None
    agent.peak = None
    _agent._agent = None
    return True
