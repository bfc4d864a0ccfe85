"""Reading types without running the program's code, and naming them.

What the census, the hints and the retention paths share.  Type names,
flags and dictionaries are read through the descriptors of ``type``
itself (a metaclass cannot intercept them), and isinstance() is never
called on arbitrary objects (it may consult a proxy's ``__class__``).
"""

import sys

try:
    from _collections import deque
except ImportError:  # pragma: no cover
    from collections import deque

from ._containers import Map


class _Probe:
    def method(self):
        return None


# The types module would be one more import into the traced program.
FunctionType = type(_Probe.method)
MethodType = type(_Probe().method)
ModuleType = type(sys)
FrameType = type(sys._getframe())

get_module = type.__dict__["__module__"].__get__
get_qualname = type.__dict__["__qualname__"].__get__
get_mro = type.__dict__["__mro__"].__get__
get_tdict = type.__dict__["__dict__"].__get__
get_flags = type.__dict__["__flags__"].__get__
# The __dict__ of a module, read without calling a module subclass's code.
module_dict = ModuleType.__dict__["__dict__"].__get__

HAVE_GC = 1 << 14

# Containers reported by the hints (subclasses too, measured with the
# built-in base's length) and not looked through by the retention paths.
CONTAINER_BASES = (dict, list, set, frozenset, deque)
ATOMS = frozenset((str, bytes, int, float, bool, complex, type(None)))
# What sys.getsizeof() adds to __sizeof__() for an object the collector tracks.
GC_HEAD = sys.getsizeof([]) - [].__sizeof__()


def atom_type(t):
    """t is one of ATOMS.  A class whose metaclass is not exactly type is
    never one, and is not hashed (its metaclass might define __hash__)."""
    return type(t) is type and t in ATOMS


def is_atom(obj):
    return atom_type(type(obj))


# -- names ---------------------------------------------------------------

def type_name(t):
    """"module.QualName", or the bare name for builtins."""
    try:
        mod = get_module(t)
        qual = get_qualname(t)
    except Exception:
        return "?"
    if not isinstance(qual, str):
        qual = "?"
    if not isinstance(mod, str) or not mod:
        return qual
    if mod == "builtins":
        return qual
    return mod + "." + qual


def type_module(t):
    try:
        mod = get_module(t)
    except Exception:
        return ""
    return mod if isinstance(mod, str) else ""


class ModuleKinds:
    """Tells standard-library modules from the program's own."""

    __slots__ = ("names", "prefixes", "agent_modules", "cache")

    def __init__(self, stdlib_prefixes, agent_modules):
        self.names = getattr(sys, "stdlib_module_names", None)
        self.prefixes = stdlib_prefixes     # made once by the agent
        self.agent_modules = agent_modules
        self.cache = Map()

    def is_agent(self, modname):
        top = modname.partition(".")[0]
        return top == "leakdiff" or modname in self.agent_modules

    def is_stdlib(self, modname):
        hit = self.cache.get(modname)
        if hit is not None:
            return hit
        hit = self._classify(modname)
        self.cache[modname] = hit
        return hit

    def _classify(self, modname):
        top = modname.partition(".")[0]
        if top in ("builtins", "_frozen_importlib", "_frozen_importlib_external"):
            return True
        if self.names is not None:
            return top in self.names
        if top in sys.builtin_module_names:
            return True
        mod = sys.modules.get(modname) or sys.modules.get(top)
        if mod is None or not issubclass(type(mod), ModuleType):
            return False
        try:
            path = module_dict(mod).get("__file__")
        except Exception:
            return False
        if not isinstance(path, str):
            return False
        if "site-packages" in path or "dist-packages" in path:
            return False
        return path.startswith(self.prefixes)

    def is_user(self, modname):
        return bool(modname) and not self.is_stdlib(modname) and not self.is_agent(modname)

    def is_agent_type(self, t):
        return self.is_agent(type_module(t))


class Namer:
    """Type names, cached for one snapshot."""

    __slots__ = ("cache",)

    def __init__(self):
        self.cache = Map()

    def __call__(self, t):
        try:
            name = self.cache.get(t)
            if name is None:
                name = self.cache[t] = type_name(t)
            return name
        except Exception:       # a metaclass whose __hash__ fails
            return type_name(t)
