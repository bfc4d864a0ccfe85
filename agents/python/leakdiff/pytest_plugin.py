"""pytest plugin: a test that leaks fails, with the line that leaks.

Enabled with ``pytest -p leakdiff.pytest_plugin`` (or through the pytest11
entry point installed beside the package), then ``--leakdiff`` checks every
test and ``@pytest.mark.leakdiff(...)`` checks marked tests or changes
their settings.

A checked test's call phase runs once to warm up and then ``repeat`` more
times, with its function-scope fixtures set up once.  After the warm-up and
after each repetition the interpreter's known caches are cleared.

On the allocator hooks (the default), the repetitions are first screened
(_Screen): after each one, the hooks' stacks tell in C whether any
allocation site can have grown, at a cost in proportion to what the run
changed rather than to the heap.  The first repetition that grew nothing
decides: nothing can have grown in every one, and the test passes without
a snapshot.  Only a test where every screened repetition may have grown
something is measured, over ``repeat`` more repetitions, as it is without
the hooks (tracemalloc, LEAKDIFF_PURE): an in-process snapshot of types
and sites (_inproc.Session) after the last run before them and after each,
kept in memory.  The verdict is leakdiff's own trend logic, which counts
in how many steps each type and site grew; it is first computed here on
the types and sites, and only a test where something grew in every step
gets a full last snapshot, its .snap files and a ``leakdiff diff`` of them,
which then decides and gives the message.  The test fails when some type
or site grew in every step, by at least one object per repetition and more
than a small byte floor, or by more than max_growth bytes when that is
set.  Growth that only happens on the first run (a cache filling up) falls
in the warm-up and is not seen; noise goes up and down and does not grow
every time.

Without a leakdiff binary the plugin's own comparison is the verdict,
and the message has no hints or retention paths; it says so once.
"""

import gc
import gzip
import json
import linecache
import logging
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from . import _containers, _inproc

try:
    from _pytest.logging import LogCaptureHandler as _LogCapture
except ImportError:  # pragma: no cover - another pytest layout
    _LogCapture = None

DEFAULT_REPEAT = 4
# Growth under this many bytes in total is never a leak by default, even
# when it grew every time (one small int per repetition, say).
BYTE_FLOOR = 32
MAX_REPEAT = 255        # leakdiff diff reads up to 256 snapshots
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text):
    """Bytes in "4096", "64k", "1KiB", "2MB" (powers of 1024); ValueError
    when it is none of those."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a size cannot be negative")
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError("%r is not a size in bytes (like 4096, 64k or 1MiB)" % (text,))
    return int(m.group(1)) * 1024 ** " kmg".index((m.group(2) or " ").lower())


def pytest_addoption(parser):
    group = parser.getgroup("leakdiff", "leak checks by heap snapshots (leakdiff)")
    group.addoption("--leakdiff", action="store_true", default=False,
                    help="check every test for memory that grows on each run of it")
    group.addoption("--leakdiff-repeat", type=int, default=None, metavar="N",
                    help="runs of a checked test after its warm-up run (default %d)"
                    % DEFAULT_REPEAT)
    group.addoption("--leakdiff-max-growth", default=None, metavar="BYTES",
                    help="growth in bytes a type or site may show over all the runs "
                    "(default: %d bytes and one object per run)" % BYTE_FLOOR)
    group.addoption("--leakdiff-dir", default=None, metavar="DIR",
                    help="keep the snapshots of leaking tests under DIR, for leakdiff diff")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "leakdiff(repeat=4, max_growth=None, enabled=True): check this test for leaks "
        "(also without --leakdiff), with these settings; enabled=False leaves it out")
    repeat = config.getoption("leakdiff_repeat")
    if repeat is not None and not 1 <= repeat <= MAX_REPEAT:
        raise pytest.UsageError("--leakdiff-repeat must be between 1 and %d" % MAX_REPEAT)
    growth = config.getoption("leakdiff_max_growth")
    if growth is not None:
        try:
            parse_size(growth)
        except ValueError as exc:
            raise pytest.UsageError("--leakdiff-max-growth: %s" % exc)
    config.pluginmanager.register(Checker(config), "leakdiff-checker")


def find_binary():
    """The leakdiff program: $LEAKDIFF (when it is set, even to nothing
    that runs: then there is none), else the one installed with this
    package (PREFIX/bin beside PREFIX/lib/leakdiff/python) or the build
    tree beside the sources, else PATH; None when there is none."""
    env = os.environ.get("LEAKDIFF")
    if env:
        # Named but not there: the user's choice, not a cue to look around.
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    up = here
    for _ in range(6):
        up = os.path.dirname(up)
        for rel in ("bin/leakdiff", "build/cli/leakdiff", "cli/leakdiff"):
            path = os.path.join(up, rel)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return shutil.which("leakdiff")


def find_ext_dir():
    """Where the agent's C accelerators are: $LEAKDIFF_EXT_DIR, the ext/
    directory installed beside the package (in the sources it holds only
    the C files), or the build tree's; None for
    the pure-Python agent ($LEAKDIFF_PURE) or when there is none."""
    if os.environ.get("LEAKDIFF_PURE"):
        return None
    env = os.environ.get("LEAKDIFF_EXT_DIR")
    if env:
        return env
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    for path in (os.path.join(here, "ext"),
                 os.path.join(os.path.dirname(os.path.dirname(here)),
                              "build", "agents", "python", "ext")):
        try:
            if any(name.startswith("_sampler.") for name in os.listdir(path)):
                return path
        except OSError:
            pass
    return None


def _settle():
    """The same clean-up before every snapshot: caches the interpreter and
    the standard library fill on their own.  functools caches are the
    program's and are left alone.  The snapshot collects garbage itself."""
    _clear_log_capture()
    clear_type_cache = getattr(sys, "_clear_type_cache", None)
    if clear_type_cache is not None:
        clear_type_cache()
    re.purge()
    linecache.clearcache()


def _clear_log_capture():
    """pytest keeps every log record of a test's call phase (for caplog
    and the report); all the runs of a checked test are one call phase, so
    the records of earlier runs are dropped, and the report shows the last
    run's."""
    if _LogCapture is None:
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _LogCapture):
            del handler.records[:]
            handler.stream.seek(0)
            handler.stream.truncate()


class _Screen:
    """Tells, between two runs of a test and without a census, that no
    allocation site grew; on the allocator hooks in exact mode (_sampler's
    mark() and changes()), else not at all (for_session() gives None).

    A site's count and bytes are sums over the hooks' stacks of that line
    sequence, so one can only have grown if some stack's live blocks or
    bytes did: the stacks that changed since the mark tell, at a cost in
    proportion to the stacks (a loop in C) rather than to the heap.  The
    agent's own stacks are kept in: leaving nothing out can only make a
    run look grown when it is not, which costs a snapshot, never a leak.

    The heap the test found is frozen (gc.freeze()) while it is screened,
    so that the collections before each look cost what the test created,
    not the whole heap; they also empty the interpreter's free lists, whose
    objects would otherwise be reused without the hooks seeing it.  A
    program that froze objects itself is left as it is, with full
    collections, and so is a process under ``leakdiff record``, whose
    agent may take a snapshot (a census of gc.get_objects(), which leaves
    frozen objects out) at any time.
    """

    __slots__ = ("ext", "frozen", "may_freeze")

    def __init__(self, ext, may_freeze):
        self.ext = ext
        self.frozen = False
        self.may_freeze = may_freeze

    @classmethod
    def for_session(cls, session):
        tm = session.agent.tm
        ext = getattr(tm, "ext", None)
        if (session.tracer() != "hooks" or getattr(tm, "mean", 1) or ext is None
                or getattr(ext, "changes", None) is None):
            return None
        return cls(ext, not session.shared)

    def start(self):
        """After the warm-up and _settle(): freeze, collect, mark."""
        if self.may_freeze and gc.get_freeze_count() == 0:
            gc.freeze()
            self.frozen = True
        self.mark()

    def mark(self):
        gc.collect()
        self.ext.mark()

    def grew(self):
        """After a run and _settle(): whether some site may have grown
        since the mark; when it may, marks again for the next run."""
        gc.collect()
        net = _containers.Map()
        frames = self.ext.frames
        for stack, count, size in self.ext.changes():
            key = frames(stack)
            old = net.get(key)
            net[key] = (count, size) if old is None else (old[0] + count, old[1] + size)
        grew = False
        for count, size in net.values():
            if count > 0 or size > 0:
                grew = True
                break
        net.clear()
        if grew:
            self.mark()
        return grew

    def finish(self):
        if self.frozen:
            self.frozen = False
            gc.unfreeze()


class _Settings:
    __slots__ = ("repeat", "max_growth")

    def __init__(self, repeat, max_growth):
        self.repeat = repeat
        self.max_growth = max_growth


class Checker:
    """The plugin's state for one pytest session (one per xdist worker)."""

    def __init__(self, config):
        self.config = config
        self.session = None
        self.binary = None
        self.binary_known = False
        self.checked = 0
        self.leaking = []
        self.added = 0.0
        self.notes = []
        self.tracer = None      # what recorded the sites: hooks, tracemalloc

    # -- which tests, with what settings ------------------------------------

    def settings(self, item):
        if not isinstance(item, pytest.Function):
            return None
        marker = item.get_closest_marker("leakdiff")
        if marker is None and not self.config.getoption("leakdiff"):
            return None
        kw = dict(marker.kwargs) if marker is not None else {}
        if not kw.pop("enabled", True):
            return None
        repeat = kw.pop("repeat", None)
        if repeat is None:
            repeat = self.config.getoption("leakdiff_repeat") or DEFAULT_REPEAT
        growth = kw.pop("max_growth", None)
        if growth is None:
            growth = self.config.getoption("leakdiff_max_growth")
        if kw:
            raise pytest.UsageError("@pytest.mark.leakdiff: unknown setting %s"
                                    % ", ".join(sorted(kw)))
        if not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise pytest.UsageError("@pytest.mark.leakdiff: repeat must be between 1 and %d"
                                    % MAX_REPEAT)
        return _Settings(repeat, None if growth is None else parse_size(growth))

    # -- running a checked test ------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        settings = self.settings(item)
        if settings is None:
            yield
            return
        original = item.runtest

        def checked():
            self.check(item, original, settings)

        item.runtest = checked
        try:
            yield
        finally:
            try:
                del item.runtest
            except AttributeError:
                pass

    def _session(self):
        if self.session is None:
            self.session = _inproc.Session(ext_dir=find_ext_dir(), caller_file=__file__)
            self.tracer = self.session.tracer()
        self.session.refresh()
        return self.session

    def check(self, item, original, settings):
        """Warm up, screen the repetitions (_screened(), on the hooks), and
        when every one may have grown something, repeat with snapshots,
        then fail the test if it leaks.

        The snapshots between runs hold types and sites only and stay in
        memory (marshal bytes in an agent Seq, which the census does not
        count; the allocator hooks do not record the plugin's work on
        them).
        Only when some row grew in every step (growth(), the rule of verdict()),
        is a full snapshot taken in place of the last one (type x site,
        hints, retention paths: what the message shows), and are the
        snapshots written out for ``leakdiff diff``, whose report is then
        the verdict and the message.  The first snapshot keeps its hints,
        so that a container's growth is counted from it.  The rows are
        followed from one snapshot to the next (_follow()), and once none
        has grown in every step so far, the remaining runs take no
        snapshot: the verdict is known to be a pass.
        """
        started = time.perf_counter()
        repeat = settings.repeat
        # Everything the loop needs exists before the first snapshot, so
        # the loop itself allocates the same at every step.
        blobs = _containers.Seq()
        rows = _containers.Seq([None])    # what _follow() keeps, packed
        labels = ["warm-up"] + ["run %d" % (i + 1) for i in range(repeat)]
        warm = 0.0
        workdir = None
        try:
            warm_started = time.perf_counter()
            original()
            warm = time.perf_counter() - warm_started
            session = self._session()
            screen = _Screen.for_session(session)
            if screen is not None and _screened(screen, original, repeat):
                self.checked += 1
                return
            _settle()
            blobs.append(_pack(session, session.snapshot(labels[0], False, False, True, False)))
            growing = _follow(session, blobs, rows)
            for i in range(repeat):
                original()
                if not growing:
                    # Nothing grew in every step so far, so nothing can:
                    # the runs go on (they may still fail), the snapshots
                    # would not change the verdict.
                    continue
                _settle()
                blobs.append(_pack(session, session.snapshot(labels[i + 1], False, False, False,
                                                             False)))
                growing = _follow(session, blobs, rows)
            self.notes.extend(n for n in session.notes() if n not in self.notes)
            leaks = _rows_over(session, rows, repeat, settings) if growing else None
            self.checked += 1
            if not leaks:
                return
            # The state is the last run's: take it again, in full, and
            # write the series out for leakdiff diff and --leakdiff-dir.
            # The rows found are dropped first, or they would be counted.
            leaks = None
            _settle()
            blobs[-1] = _pack(session, session.snapshot(labels[-1], True, True, True, False))
            self.notes.extend(n for n in session.notes() if n not in self.notes)
            workdir = tempfile.mkdtemp(prefix="leakdiff-pytest-")
            paths = [os.path.join(workdir, "%03d.snap" % i) for i in range(repeat + 1)]
            for path, blob in zip(paths, blobs):
                _write(path, _inproc.encode(marshal.loads(blob)))
            if self._binary() is not None:
                leaks, report = self.verdict(paths, settings)
            else:
                report = {"hints": []}
                leaks = _compare(session, blobs, settings)
            if not leaks:
                return
            self.leaking.append(item.nodeid)
            kept = self.keep(item, workdir, paths)
            pytest.fail(self.message(report, leaks, repeat, kept, paths), pytrace=False)
        finally:
            del blobs[:], rows[:]
            self.added += time.perf_counter() - started - warm
            # Gone already when keep() moved it.
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def keep(self, item, workdir, paths):
        """Moves the snapshots of a leaking test under --leakdiff-dir;
        returns where they are, or None."""
        base = self.config.getoption("leakdiff_dir")
        if not base:
            return None
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_")[:150] or "test"
        dest = os.path.join(base, name)
        try:
            os.makedirs(base, exist_ok=True)
            shutil.rmtree(dest, ignore_errors=True)
            shutil.move(workdir, dest)
        except OSError:
            return None
        for i, p in enumerate(paths):
            paths[i] = os.path.join(dest, os.path.basename(p))
        return dest

    # -- the verdict ----------------------------------------------------------

    def _binary(self):
        if not self.binary_known:
            self.binary_known = True
            self.binary = find_binary()
            if self.binary is None:
                self.notes.append("no leakdiff program found ($LEAKDIFF, beside the agent or "
                                  "on PATH): snapshots compared in Python, without hints "
                                  "or retention paths")
        return self.binary

    def verdict(self, paths, settings):
        """(rows that grew every time by more than allowed, diff report),
        from ``leakdiff diff`` on the snapshot files."""
        r = subprocess.run([self._binary(), "diff", "--format=json", "--top=0", "--color=never",
                            "--type-sites=3"] + paths,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode in (0, 1) and r.stdout.strip():
            report = json.loads(r.stdout)
        else:
            raise RuntimeError("leakdiff diff failed: %s" % (r.stderr.strip()[-500:],))
        steps = report.get("intervals", len(paths) - 1)
        return _over(report, steps, settings), report

    def message(self, report, leaks, repeat, kept, paths):
        lines = ["leakdiff: memory grew in every one of %d runs of this test" % repeat]
        for kind, row in leaks:
            per = row["count_delta"] / float(repeat)
            amount = "+%d %s (%s per run), %s" % (
                row["count_delta"], "objects" if kind == "types" else "blocks",
                ("+%d" % per) if per == int(per) else ("+%.1f" % per), _bytes(row["bytes_delta"]))
            if kind == "types":
                lines.append("  type %s: %s" % (row["name"], amount))
                for site in (row.get("sites") or [])[:3]:
                    lines.append("    allocated at %s" % _where(site))
            else:
                lines.append("  site %s: %s" % (_where(row), amount))
        # Retention paths only for the types that leak: the others are
        # about whatever the snapshot happened to look at.
        leaking = set(row.get("name") for kind, row in leaks if kind == "types")
        for hint in report.get("hints") or ():
            if hint.get("kind") == "path" and hint.get("type") not in leaking:
                continue
            text = _hint(hint)
            if text:
                lines.append("  hint: " + text)
        if kept:
            lines.append("  snapshots: leakdiff diff " + " ".join(paths))
        else:
            lines.append("  (--leakdiff-dir=DIR keeps the snapshots of leaking tests)")
        return "\n".join(lines)

    # -- the summary, also across xdist workers ----------------------------

    def stats(self):
        return {"checked": self.checked, "leaking": list(self.leaking),
                "added": self.added, "notes": list(self.notes), "tracer": self.tracer}

    def merge(self, stats):
        self.checked += stats.get("checked", 0)
        self.leaking.extend(stats.get("leaking", ()))
        self.added += stats.get("added", 0.0)
        self.tracer = self.tracer or stats.get("tracer")
        for note in stats.get("notes", ()):
            if note not in self.notes:
                self.notes.append(note)

    def pytest_sessionfinish(self, session):
        out = getattr(session.config, "workeroutput", None)
        if out is not None:
            out["leakdiff"] = json.dumps(self.stats())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        del error
        data = getattr(node, "workeroutput", {}).get("leakdiff")
        if data:
            self.merge(json.loads(data))

    def pytest_terminal_summary(self, terminalreporter):
        if not self.checked and not self.leaking and not self.notes:
            return
        tr = terminalreporter
        tr.section("leakdiff")
        tr.write_line("%d tests checked, %d leaking; the checks added %.2fs%s"
                      % (self.checked, len(self.leaking), self.added,
                         " (sites from %s)" % self.tracer if self.tracer else ""))
        for nodeid in self.leaking:
            tr.write_line("  leaking: " + nodeid)
        for note in self.notes:
            tr.write_line("  note: " + note)

    def pytest_unconfigure(self, config):
        del config
        if self.session is not None:
            self.session.close()
            self.session = None


def _screened(screen, original, repeat):
    """Runs the test ``repeat`` times, screening the runs with ``screen``
    (see _Screen) until one leaves every site as it was; True when one did:
    then nothing can have grown in every run, and the test passes without
    a snapshot.  False when every run may have grown something: the test
    is then measured with snapshots, over as many runs again."""
    # The loop's iterator exists before the mark: made after it, it
    # would be a block the first run seems to keep.
    runs = iter(range(repeat))
    passed = False
    _settle()
    screen.start()
    try:
        for _ in runs:
            original()
            if passed:
                continue
            _settle()
            if not screen.grew():
                passed = True
        return passed
    finally:
        screen.finish()


def _pack(session, doc):
    """The document as marshal bytes, made without recording it: much
    cheaper to make and read back than JSON, which is only made for the
    files of a leaking test."""
    quiet = session.quiet(True)
    try:
        return marshal.dumps(doc)
    finally:
        if quiet:
            session.quiet(False)


def _follow(session, blobs, rows):
    """Takes in the newest of the packed documents ``blobs`` and says
    whether some type or site grew in every step so far.

    rows[0] holds, packed, the types and sites of the first document, then
    after each step {(0 for types or 1 for sites, key): (first count, first
    bytes, last count, last bytes)} of the rows that grew (in count or in
    bytes) in every step so far: the verdict of growth(), worked out one
    step at a time, so that a test whose rows stop growing can stop."""
    quiet = session.quiet(True)
    try:
        new = _tables(marshal.loads(blobs[-1]))
        if len(blobs) == 1:
            rows[0] = marshal.dumps(new)
            return True
        old = marshal.loads(rows[0])
        kept = {}
        if len(blobs) == 2:
            for ix in (0, 1):
                before = old[ix]
                for key, (count, size) in new[ix].items():
                    first = before.get(key, (0, 0))
                    if count > first[0] or size > first[1]:
                        kept[(ix, key)] = (first[0], first[1], count, size)
        else:
            for (ix, key), (c0, b0, c1, b1) in old.items():
                now = new[ix].get(key)
                if now is not None and (now[0] > c1 or now[1] > b1):
                    kept[(ix, key)] = (c0, b0, now[0], now[1])
        rows[0] = marshal.dumps(kept)
        return bool(kept)
    finally:
        if quiet:
            session.quiet(False)


def _rows_over(session, rows, steps, settings):
    """The (kind, row) of what _follow() kept after ``steps`` steps that
    grew by more than the settings allow, as growth() gives them."""
    quiet = session.quiet(True)
    try:
        kept = marshal.loads(rows[0])
        report = {"types": [], "sites": []}
        for (ix, key), (c0, b0, c1, b1) in kept.items():
            row = {"grew_in": steps, "count_delta": c1 - c0, "bytes_delta": b1 - b0}
            if ix == 0:
                row["name"] = key
                report["types"].append(row)
            else:
                row["frames"] = [{"file": f, "line": ln, "function": fn} for f, ln, fn in key]
                report["sites"].append(row)
        return _over(report, steps, settings)
    finally:
        if quiet:
            session.quiet(False)


def _compare(session, blobs, settings):
    """growth() of the packed documents, worked out without recording."""
    quiet = session.quiet(True)
    try:
        return growth([_tables(marshal.loads(blob)) for blob in blobs], settings)
    finally:
        if quiet:
            session.quiet(False)


def _write(path, blob):
    with open(path, "wb") as f:
        f.write(gzip.compress(blob, 1))


def _bytes(n):
    sign = "+" if n >= 0 else "-"
    n = abs(n)
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return ("%s%d %s" % (sign, n, unit)) if unit == "B" else ("%s%.1f %s" % (sign, n, unit))
        n /= 1024.0
    return ""


def _where(site):
    """file:line in function, and the caller outside the standard library
    when the allocating line is in it."""
    frames = site.get("frames") or []
    if not frames:
        return "?"
    f = frames[0]
    text = "%s:%s in %s" % (f.get("file"), f.get("line"), f.get("function"))
    caller = site.get("caller")
    if isinstance(caller, int) and 0 < caller < len(frames):
        c = frames[caller]
        text += ", called from %s:%s in %s" % (c.get("file"), c.get("line"), c.get("function"))
    return text


def _hint(hint):
    kind = hint.get("kind")
    if kind == "path":
        return "a %s is kept by %s" % (hint.get("type"), " -> ".join(hint.get("path") or []))
    if kind in ("container", "lru_cache") and (hint.get("delta") or 0) > 0:
        what = "lru_cache" if kind == "lru_cache" else (hint.get("type") or "container")
        bound = ""
        if kind == "lru_cache" and hint.get("maxsize") is None:
            bound = " (unbounded)"
        return "%s %s%s grew by %d entries" % (what, hint.get("name"), bound, hint["delta"])
    if kind == "garbage" and (hint.get("delta") or 0) > 0:
        return "gc.garbage grew by %d %s objects" % (hint["delta"], hint.get("type"))
    return None


# -- the comparison in memory ------------------------------------------------------

def _tables(doc):
    """({type name: (count, bytes)}, {frames: (count, bytes)}) of a
    snapshot document, frames as ((file, line, function), ...)."""
    strings = doc.get("strings") or []
    frames = [(strings[fr[0]], fr[1], strings[fr[2]]) for fr in doc.get("frames") or []]
    types = {}
    for row in doc.get("types") or []:
        types[strings[row[0]]] = (row[1], row[2])
    sites = {}
    frame = frames.__getitem__
    # Rows may carry more elements than these: take the ones known.
    for row in doc.get("sites") or []:
        count, size, tb = row[:3]
        key = tuple(map(frame, tb))
        old = sites.get(key)
        sites[key] = (count, size) if old is None else (old[0] + count, old[1] + size)
    return types, sites


def _over(report, steps, settings):
    """The rows of a trend report that grew in every one of ``steps``
    intervals by more than the settings allow, as (kind, row)."""
    leaks = []
    for kind in ("types", "sites"):
        for row in report.get(kind) or ():
            if row.get("grew_in") != steps:
                continue
            if settings.max_growth is not None:
                over = row["bytes_delta"] > settings.max_growth
            else:
                over = row["count_delta"] >= settings.repeat and row["bytes_delta"] > BYTE_FLOOR
            if over:
                leaks.append((kind, row))
    return leaks


def growth(tables, settings):
    """The verdict leakdiff diff's trend rows give, computed on the tables
    of a series of snapshots (see _tables): the (kind, row) that grew, in
    count or in bytes, in every step by more than allowed.  A row can only grow in every step when it is in
    the last table, so only those rows are followed."""
    steps = len(tables) - 1
    leaks = []
    for ix, kind in ((0, "types"), (1, "sites")):
        columns = [t[ix] for t in tables]
        for key, last in columns[-1].items():
            seq = [c.get(key, (0, 0)) for c in columns]
            grew = 0
            for a, b in zip(seq, seq[1:]):
                if b[0] > a[0] or b[1] > a[1]:
                    grew += 1
                else:
                    break
            if grew != steps:
                continue
            row = {"grew_in": grew, "count_delta": last[0] - seq[0][0],
                   "bytes_delta": last[1] - seq[0][1]}
            if kind == "types":
                row["name"] = key
            else:
                row["frames"] = [{"file": f, "line": ln, "function": fn} for f, ln, fn in key]
            leaks.append((kind, row))
    return _over({"types": [r for k, r in leaks if k == "types"],
                  "sites": [r for k, r in leaks if k == "sites"]}, steps, settings)
