"""The leak hints of a snapshot.

Things worth a look that the type and site tables do not show: big
containers held by module globals and class attributes, the fill of
functools.lru_cache caches, and the objects in gc.garbage.  The cycles
hint and the retention paths are added by the snapshot builder.
"""

import gc

from ._containers import Map, Seq
from ._paths import roots
from ._typeinfo import CONTAINER_BASES, atom_type

CONTAINER_HINTS = 2000          # most container hints
STDLIB_CONTAINER_MIN = 1000     # stdlib globals reported from this length


def container_length(value):
    """(type, len) when value is one of the reported containers, else None."""
    t = type(value)
    for base in CONTAINER_BASES:
        if t is base or issubclass(t, base):
            try:
                return t, base.__len__(value)
            except Exception:
                return None
    return None


def container_hints(namespaces, names):
    hints = Seq()
    for prefix, key, value, is_user in roots(namespaces):
        if atom_type(type(value)):
            continue
        hit = container_length(value)
        if hit is None:
            continue
        t, length = hit
        if length < 1 or (not is_user and length < STDLIB_CONTAINER_MIN):
            continue
        hints.append((is_user, length, prefix + "." + key, names(t)))
    hints.sort(key=lambda h: (not h[0], -h[1], h[2]))
    return [
        {"kind": "container", "name": root, "type": tname, "length": length}
        for _u, length, root, tname in hints[:CONTAINER_HINTS]
    ]


def lru_hints(wrappers):
    out = Seq()
    for w in wrappers:
        try:
            info = w.cache_info()
            mod = getattr(w, "__module__", None)
            qual = getattr(w, "__qualname__", None) or getattr(w, "__name__", None)
            name = "%s.%s" % (mod, qual) if isinstance(mod, str) and mod else str(qual)
            hits, misses, maxsize, currsize = info[0], info[1], info[2], info[3]
            out.append({
                "kind": "lru_cache", "name": name,
                "maxsize": maxsize if type(maxsize) is int else None,
                "currsize": int(currsize), "hits": int(hits), "misses": int(misses),
            })
        except Exception:
            continue
    out.sort(key=lambda h: (-h["currsize"], h["name"]))
    return out


def garbage_hints(names):
    counts = Map()
    for obj in Seq(gc.garbage):
        name = names(type(obj))
        counts[name] = counts.get(name, 0) + 1
    return [{"kind": "garbage", "type": n, "count": c} for n, c in sorted(counts.items())]
