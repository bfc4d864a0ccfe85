"""Resolving (filename, line) pairs to the enclosing function.

tracemalloc reports only file names and line numbers.  To name the function
around a line we load the module's code (from its up-to-date .pyc when there
is one, otherwise by compiling the source), walk the tree of code objects via
co_consts and give every line to the most deeply nested code object whose
line table contains it.

The results that are kept for the life of the process are small: per file a
few tuples of ints and names ("runs" of lines that belong to one code object)
and the stripped text of the lines that were asked for.  Code objects and
whole sources are dropped after use.
"""

import marshal
import os
import sys

try:
    from _bisect import bisect_right
except ImportError:  # pragma: no cover
    from bisect import bisect_right

import _warnings

from ._containers import Map

_CodeType = type(compile("0", "<leakdiff>", "eval"))
_CO_OPTIMIZED = 0x0001
_HAS_QUALNAME = hasattr(_CodeType, "co_qualname")
_HAS_CO_LINES = hasattr(_CodeType, "co_lines")

UNKNOWN = "?"
MODULE = "<module>"

# What a line resolves to when nothing is known about it.
_NOTHING = (UNKNOWN, -1, None)


def _pyc_tag():
    tag = getattr(sys.implementation, "cache_tag", None)
    if not tag:
        return None
    opt = sys.flags.optimize
    if opt:
        return "%s.opt-%d.pyc" % (tag, opt)
    return tag + ".pyc"


def _magic():
    ext = sys.modules.get("_frozen_importlib_external")
    return getattr(ext, "MAGIC_NUMBER", None)


def _decode_source(data):
    """Decode Python source bytes following PEP 263 (BOM or coding cookie)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    encoding = "utf-8"
    for line in data.split(b"\n", 2)[:2]:
        text = line.lstrip(b" \t\f")
        if not text.startswith(b"#"):
            if text.strip():
                break
            continue
        at = text.find(b"coding")
        if at < 0 or at + 6 >= len(text) or text[at + 6:at + 7] not in (b":", b"="):
            continue
        rest = text[at + 7:].lstrip(b" \t")
        name = bytearray()
        for byte in rest:
            if chr(byte).isalnum() or byte in b"-_.":
                name.append(byte)
            else:
                break
        if name:
            encoding = name.decode("ascii", "replace")
        break
    try:
        return data.decode(encoding, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _lines_from_lnotab(code):
    """Python 3.8-3.9: co_lnotab is (byte increment, line increment) pairs.

    A line counts when an instruction starts on it, that is when a
    non-zero byte increment follows it.
    """
    lines = set()
    line = code.co_firstlineno
    it = iter(code.co_lnotab)
    for byte_step, line_step in zip(it, it):
        if byte_step:
            lines.add(line)
        if line_step >= 0x80:
            line_step -= 0x100
        if line_step:
            line += line_step
    lines.add(line)
    return lines


def _lines_from_linetable_310(code):
    """Python 3.10: co_linetable is (byte length, line delta) pairs; a line
    delta of -128 means "no line"; zero-length entries only carry deltas."""
    lines = set()
    line = code.co_firstlineno
    it = iter(code.co_linetable)
    for length, delta in zip(it, it):
        if delta == 0x80:
            continue
        if delta > 0x80:
            delta -= 0x100
        if delta:
            line += delta
        if length:
            lines.add(line)
    return lines


def _varint(it):
    byte = next(it)
    value = byte & 63
    shift = 0
    while byte & 64:
        byte = next(it)
        shift += 6
        value |= (byte & 63) << shift
    return value


def _svarint(it):
    value = _varint(it)
    return -(value >> 1) if value & 1 else value >> 1


def _lines_from_locations(code):
    """Python 3.11+: the location table (see CPython's locations.md).

    Each entry starts with a byte 1CCCCLLL (C: form, L: length - 1); the
    start line is relative to the previous entry's.  Iterating the bytes
    yields cached small ints, so unlike co_lines() this allocates almost
    nothing (tracemalloc traces every allocation the agent makes).
    """
    lines = set()
    line = code.co_firstlineno
    it = iter(code.co_linetable)
    for first in it:
        form = (first >> 3) & 15
        if form == 15:              # no location
            continue
        if form == 14:              # long form
            delta = _svarint(it)
            _varint(it)
            _varint(it)
            _varint(it)
        elif form == 13:            # no column
            delta = _svarint(it)
        elif form >= 10:            # one-line forms
            delta = form - 10
            next(it)
            next(it)
        else:                       # short forms
            delta = 0
            next(it)
        if delta:
            line += delta
        lines.add(line)
    return lines


def _lines_from_co_lines(code):
    lines = set()
    for _start, _end, line in code.co_lines():
        if line is not None:
            lines.add(line)
    return lines


def _pick_decoder():
    version = sys.version_info[:2]
    if version < (3, 10):
        return _lines_from_lnotab
    if version == (3, 10):
        candidate = _lines_from_linetable_310
    else:
        candidate = _lines_from_locations
    # Check the hand-written decoder against co_lines() on real code; use
    # co_lines() (correct, but allocation-heavy) if they ever disagree.
    try:
        samples = [_pick_decoder.__code__, _walk_code.__code__, _line_runs.__code__,
                   _decode_source.__code__]
        for code in samples:
            if candidate(code) != _lines_from_co_lines(code):
                return _lines_from_co_lines
    except Exception:
        return _lines_from_co_lines
    return candidate


def _code_lines(code):
    """The set of line numbers that instructions of ``code`` map to."""
    try:
        return _DECODE(code)
    except Exception:
        if _HAS_CO_LINES:
            return _lines_from_co_lines(code)
        return set()


def _walk_code(top):
    """Yield (code, depth, qualname, function_line) for a module code tree."""
    stack = [(top, 0, "", False)]
    while stack:
        code, depth, qual, is_function = stack.pop()
        if depth == 0:
            name, first = MODULE, -1
        else:
            name, first = qual, code.co_firstlineno
        yield code, depth, name, first
        for const in code.co_consts:
            if type(const) is not _CodeType:
                continue
            child_fn = bool(const.co_flags & _CO_OPTIMIZED)
            if _HAS_QUALNAME:
                child_qual = const.co_qualname
            elif depth == 0:
                child_qual = const.co_name
            elif is_function:
                child_qual = qual + ".<locals>." + const.co_name
            else:  # a class body
                child_qual = qual + "." + const.co_name
            stack.append((const, depth + 1, child_qual, child_fn))


def _line_runs(top):
    """Map every line of a module to its innermost code object.

    Returns (starts, owners, funcs), three flat tuples of atoms: lines from
    starts[i] up to the next start belong to the code object whose
    qualname and first line are funcs[2 * owners[i]] and the item after.
    """
    funcs = []
    depth_of = {}   # line -> depth of the code object that has it so far
    owner_of = {}   # line -> index of that code object
    for code, depth, name, first in _walk_code(top):
        index = len(funcs) // 2
        funcs.append(name)
        funcs.append(first)
        lines = _code_lines(code)
        header = code.co_firstlineno if depth else None
        multi = len(lines) > 1
        for line in lines:
            seen = depth_of.get(line)
            if line == header and multi and seen is not None:
                # The "def"/"class"/decorator line of a multi-line body: the
                # statement that builds the function or class runs in the
                # enclosing code, so keep the line there.
                continue
            if seen is None or seen <= depth:
                depth_of[line] = depth
                owner_of[line] = index
    starts = []
    owners = []
    last = None
    for line in sorted(owner_of):
        owner = owner_of[line]
        if owner != last:
            starts.append(line)
            owners.append(owner)
            last = owner
    return tuple(starts), tuple(owners), tuple(funcs)


_DECODE = _pick_decoder()


class _FileInfo:
    """What is remembered about one file; see Resolver.

    Only flat tuples and dicts of atoms hang off it: the collector untracks
    those, and the census does not look inside the agent's own objects.
    """

    __slots__ = ("stamp", "starts", "owners", "funcs", "texts", "missing_source")

    def __init__(self, stamp):
        self.stamp = stamp
        self.starts = None        # see _line_runs(); None until loaded
        self.owners = None
        self.funcs = None
        self.texts = {}           # line -> stripped text, or None
        self.missing_source = False


class Resolver:
    """Caches function names and line texts per file for the process."""

    __slots__ = ("stdlib_dir", "files", "pyc_tag", "magic")

    def __init__(self, stdlib_dir):
        self.stdlib_dir = stdlib_dir
        self.files = Map()
        self.pyc_tag = _pyc_tag()
        self.magic = _magic()

    # -- locating the source -------------------------------------------

    def _source_path(self, filename):
        """The on-disk source for a code filename, or None."""
        if filename.startswith("<frozen ") and filename.endswith(">"):
            name = filename[8:-1]
            mod = sys.modules.get(name)
            path = getattr(mod, "__file__", None) if mod is not None else None
            if isinstance(path, str) and path.endswith(".py"):
                return path
            if self.stdlib_dir:
                base = os.path.join(self.stdlib_dir, *name.split("."))
                for cand in (base + ".py", os.path.join(base, "__init__.py")):
                    if os.path.isfile(cand):
                        return cand
            return None
        if filename.startswith("<"):
            return None
        return filename

    def _linecache_lines(self, filename):
        """Lines registered in linecache for a non-file source (IPython...)."""
        lc = sys.modules.get("linecache")
        cache = getattr(lc, "cache", None)
        if not isinstance(cache, dict):
            return None
        entry = cache.get(filename)
        if type(entry) is tuple and len(entry) >= 3 and isinstance(entry[2], list):
            return entry
        return None

    # -- loading code ----------------------------------------------------

    def _load_pyc(self, path, st):
        if not self.pyc_tag or not self.magic or not path.endswith(".py"):
            return None
        head, tail = os.path.split(path)
        cached = os.path.join(head, "__pycache__", tail[:-3] + "." + self.pyc_tag)
        try:
            with open(cached, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        if len(data) < 16 or data[:4] != self.magic:
            return None
        flags = int.from_bytes(data[4:8], "little")
        if flags != 0:
            return None  # hash-based pyc: compile from source instead
        mtime = int.from_bytes(data[8:12], "little")
        size = int.from_bytes(data[12:16], "little")
        if mtime != (int(st.st_mtime) & 0xFFFFFFFF) or size != (st.st_size & 0xFFFFFFFF):
            return None
        try:
            code = marshal.loads(data[16:])
        except Exception:
            return None
        return code if type(code) is _CodeType else None

    @staticmethod
    def _compile(source, filename):
        """compile() with compile-time warnings silenced.

        Compiling a module again would repeat its SyntaxWarnings on the
        program's stderr.  For the duration of the call the warning filters
        become a single "ignore" entry: the warnings module's list is
        swapped for a new one (the program's own list is not touched), or,
        before that module is imported, the C module's list gets an entry in
        front that is removed right after.  The filters version is not
        bumped, so no "already warned" registry of the program is reset.
        """
        entry = ("ignore", None, Warning, None, 0)
        wmod = sys.modules.get("warnings")
        saved = getattr(wmod, "filters", None) if wmod is not None else None
        if isinstance(saved, list):
            wmod.filters = [entry]
            try:
                return compile(source, filename, "exec", 0, True)
            except Exception:
                return None
            finally:
                wmod.filters = saved
        filters = _warnings.filters
        filters.insert(0, entry)
        try:
            return compile(source, filename, "exec", 0, True)
        except Exception:
            return None
        finally:
            for i, item in enumerate(filters):
                if item is entry:
                    del filters[i]
                    break

    # -- public -----------------------------------------------------------

    def resolve(self, wanted):
        """Resolve an iterable of (filename, line) pairs.

        Returns a dict (filename, line) -> (qualname, function_line, text)
        where text is None when unknown.
        """
        by_file = {}
        for filename, line in wanted:
            by_file.setdefault(filename, []).append(line)
        out = {}
        for filename, lines in by_file.items():
            try:
                self._resolve_file(filename, lines, out)
            except Exception:
                for line in lines:
                    out[(filename, line)] = _NOTHING
        return out

    def _resolve_file(self, filename, lines, out):
        if not isinstance(filename, str):
            for line in lines:
                out[(filename, line)] = _NOTHING
            return
        path = self._source_path(filename)
        st = None
        if path is not None:
            try:
                st = os.stat(path)
                stamp = (st.st_mtime_ns, st.st_size)
            except (OSError, ValueError):
                path = None
        lc_entry = None
        if path is None:
            lc_entry = self._linecache_lines(filename)
            stamp = (lc_entry[0], lc_entry[1]) if lc_entry else None
        info = self.files.get(filename)
        if info is None or info.stamp != stamp:
            info = _FileInfo(stamp)
            self.files[filename] = info
        need_runs = info.starts is None and not info.missing_source
        need_text = [line for line in lines if line not in info.texts]
        if need_runs or need_text:
            source = None
            if path is not None:
                try:
                    with open(path, "rb") as fh:
                        source = fh.read()
                except OSError:
                    source = None
            elif lc_entry is not None:
                source = "".join(lc_entry[2]).encode("utf-8", "surrogateescape")
            if need_runs:
                code = None
                if path is not None and st is not None:
                    code = self._load_pyc(path, st)
                if code is None and source is not None:
                    code = self._compile(source, filename)
                if code is not None:
                    info.starts, info.owners, info.funcs = _line_runs(code)
                else:
                    info.missing_source = True
                del code
            if need_text:
                texts = _decode_source(source).splitlines() if source is not None else ()
                for line in need_text:
                    if 0 < line <= len(texts):
                        info.texts[line] = texts[line - 1].strip()
                    else:
                        info.texts[line] = None
            del source
        starts, owners, funcs = info.starts, info.owners, info.funcs
        for line in lines:
            text = info.texts.get(line)
            if starts is None or line <= 0:
                out[(filename, line)] = (UNKNOWN, -1, text)
                continue
            at = bisect_right(starts, line) - 1
            if at < 0:
                name, first = MODULE, -1
            else:
                name, first = funcs[2 * owners[at]], funcs[2 * owners[at] + 1]
            out[(filename, line)] = (name, first, text)
