"""Sizes of the objects the census counts.

What summing sys.getsizeof() over every instance of a type would give,
computed with as few calls and allocations as the type allows: while
tracemalloc traces, every object the agent makes costs a traceback
capture.  A size is never obtained by calling a __sizeof__ written in
Python (that would run the program's code).
"""

import sys
from itertools import compress, filterfalse, repeat
from _operator import add as _add

try:
    from _bisect import bisect_left, bisect_right
except ImportError:  # pragma: no cover
    from bisect import bisect_left, bisect_right

from ._containers import Map, Seq
from ._typeinfo import GC_HEAD, HAVE_GC, get_flags, get_mro, get_tdict

# The kinds of __sizeof__ implemented in C: calling one runs no Python code.
_C_METHODS = frozenset((
    type(object.__dict__["__sizeof__"]),   # method_descriptor
    type(object.__dict__["__init__"]),     # wrapper_descriptor
    type(len),                             # builtin_function_or_method
))


# -- sizes ---------------------------------------------------------------

def _safe_sizeof(obj):
    """Shallow size without calling a __sizeof__ written in Python."""
    try:
        size = object.__sizeof__(obj)
    except Exception:
        return 0
    if get_flags(type(obj)) & HAVE_GC:
        size += GC_HEAD
    return size


# -- sizes of whole groups -------------------------------------------------------

_OBJECT_SIZEOF = object.__dict__["__sizeof__"]
_getsizeof = sys.getsizeof


def _lookup(t, name):
    """The attribute ``name`` as found on t's MRO (no descriptor call)."""
    try:
        for klass in get_mro(t):
            d = get_tdict(klass)
            if name in d:
                return d[name]
    except Exception:
        pass
    return None


_TUPLE_LEN = tuple.__dict__["__len__"]


def _sizeof_owner(t):
    """The __sizeof__ implementation instances of t use, or None."""
    return _lookup(t, "__sizeof__")


def _samples(group):
    n = len(group)
    return (group[0], group[n // 2], group[-1]) if n else ()


def _int_bytes(group):
    """Total getsizeof of exact ints, by counting digits, not calling it."""
    bits = Seq(map(int.bit_length, group))
    bits.sort()
    per_digit = sys.int_info.bits_per_digit
    total = _getsizeof(0) * bisect_right(bits, 0)
    low = 1
    while low <= (bits[-1] if bits else 0):
        high = low + per_digit - 1
        count = bisect_right(bits, high) - bisect_left(bits, low)
        if count:
            total += count * _getsizeof(1 << (low - 1))
        low = high + 1
    return total


def group_bytes(t, group):
    """(total bytes, constant size or None) of all objects in ``group``.

    The result is what summing sys.getsizeof() over the group gives, but it
    is computed without sys.getsizeof() on every object: that makes a bound
    method and an int per call, both traced by tracemalloc.  Instead the
    type's own C __sizeof__ is mapped over the group (plus the constant
    getsizeof adds for the GC header), or, for the commonest types, sizes
    come from a per-type constant or from lengths.  Every shortcut is
    checked against sys.getsizeof() on a few samples first.
    """
    n = len(group)
    if not n:
        return 0, None
    owner = _sizeof_owner(t)
    if type(owner) not in _C_METHODS:
        sizes = _sizes_slowly(group, _safe_sizeof)
        return sum(sizes), None
    samples = _samples(group)
    try:
        if owner is _OBJECT_SIZEOF:
            itemsize = t.__itemsize__ if isinstance(t.__itemsize__, int) else -1
            if itemsize == 0:
                size = _getsizeof(group[0])
                if all(_getsizeof(x) == size for x in samples):
                    return size * n, size
            elif itemsize > 0 and issubclass(t, tuple) and \
                    _lookup(t, "__len__") is _TUPLE_LEN:
                # len() reaches tuple's own C slot: no Python code runs.
                x = group[0]
                base = _getsizeof(x) - itemsize * len(x)
                if all(_getsizeof(y) == base + itemsize * len(y) for y in samples):
                    return base * n + itemsize * sum(map(len, group)), None
        elif t is str:
            empty = _getsizeof("")
            ascii_ = Seq(compress(group, map(str.isascii, group)))
            if all(_getsizeof(x) == empty + len(x) for x in _samples(ascii_)):
                total = empty * len(ascii_) + sum(map(len, ascii_))
                del ascii_
                rest = Seq(filterfalse(str.isascii, group))
                return total + _mapped_bytes(owner, rest), None
        elif t is bytes:
            empty = _getsizeof(b"")
            if all(_getsizeof(x) == empty + len(x) for x in samples):
                return empty * n + sum(map(len, group)), None
        elif t is int:
            if all(_getsizeof(x) == _int_bytes((x,)) for x in samples):
                return _int_bytes(group), None
        return _mapped_bytes(owner, group), None
    except Exception:
        sizes = _sizes_slowly(group, _getsizeof)
        return sum(sizes), None


def _mapped_bytes(owner, group):
    """sum(getsizeof(x) for x in group) via the C __sizeof__ ``owner``."""
    if not group:
        return 0
    extra = None
    for x in _samples(group):
        gap = _getsizeof(x) - owner(x)
        if extra is None:
            extra = gap
        elif gap != extra:
            return sum(map(_getsizeof, group))
    return sum(map(owner, group)) + extra * len(group)


def _sizes_slowly(group, sizer):
    sizes = Seq()
    for obj in group:
        try:
            sizes.append(sizer(obj))
        except Exception:
            sizes.append(0)
    return sizes


def sizes_of(t, group):
    """Per-object sizes for the type_sites of t (only chosen types)."""
    owner = _sizeof_owner(t)
    sizer = _getsizeof if type(owner) in _C_METHODS else _safe_sizeof
    try:
        if sizer is _getsizeof and group:
            extra = _getsizeof(group[0]) - owner(group[0])
            if all(_getsizeof(x) - owner(x) == extra for x in _samples(group)):
                return Seq(map(_add, map(owner, group), repeat(extra)))
        return Seq(map(sizer, group))
    except Exception:
        return _sizes_slowly(group, sizer)


# -- sizes from the C census ----------------------------------------------------

_LIST_SIZEOF = list.__dict__["__sizeof__"]
_get_itemsize = type.__dict__["__itemsize__"].__get__
_PTR = _getsizeof([None]) - _getsizeof([])


def c_group_bytes(c, mod, t, n):
    """What group_bytes(t, instances) returns, from the C census c."""
    owner = _sizeof_owner(t)
    if type(owner) in _C_METHODS:
        try:
            hit = _c_shortcut(c, mod, t, n, owner)
        except Exception:
            hit = None
        if hit is not None:
            return hit
    return group_bytes(t, c.sample(t, 0))


def _c_linear(c, mod, t, n, samples, kind, unit):
    """Sizes that are a constant plus ``unit`` times the measure ``kind``."""
    total = c.facts(t, kind)
    if total is None or not samples:
        return None
    measure = mod.measure
    base = _getsizeof(samples[0]) - unit * measure(samples[0], kind)
    if all(_getsizeof(x) == base + unit * measure(x, kind) for x in samples):
        return base * n + unit * total, None
    return None


def _c_shortcut(c, mod, t, n, owner):
    samples = c.samples(t)
    if owner is _OBJECT_SIZEOF:
        itemsize = _get_itemsize(t)
        if itemsize == 0:
            size = _getsizeof(samples[0])
            if all(_getsizeof(x) == size for x in samples):
                return size * n, size
            return None
        if itemsize > 0:
            return _c_linear(c, mod, t, n, samples, mod.VAR, itemsize)
        return None
    if owner is _LIST_SIZEOF:
        return _c_linear(c, mod, t, n, samples, mod.LIST, _PTR)
    if t is str:
        count, length, rest = c.facts(t, mod.STR)
        plain = [x for x in samples if mod.measure(x, mod.STR) >= 0]
        if count and not plain:
            return None
        empty = _getsizeof("")
        if all(_getsizeof(x) == empty + len(x) for x in plain):
            return empty * count + length + _mapped_bytes(owner, rest), None
        return None
    if t is int:
        by_digits = c.facts(t, mod.INT)
        if by_digits is None:
            return None
        per = sys.int_info.bits_per_digit
        sizes = Map()
        for d in by_digits:
            sizes[d] = _getsizeof(1 << (d * per - 1)) if d else _getsizeof(0)
        for x in samples:
            if _getsizeof(x) != sizes.get(mod.measure(x, mod.INT)):
                return None
        return sum(count * sizes[d] for d, count in by_digits.items()), None
    return None
