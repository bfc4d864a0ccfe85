"""Tests that leak, for the leakdiff pytest plugin's end-to-end test
(tests/e2e/test_pytest_plugin.py).  Each leaking line ends in a comment
naming it, which the e2e test looks for in the failure message."""
import functools
import itertools
import logging

_CACHE = {}
_COUNTER = itertools.count()


class CacheEntry:
    def __init__(self, key):
        self.key = key
        self.payload = [key] * 8


def test_module_cache():
    key = next(_COUNTER)
    _CACHE[key] = CacheEntry(key)  # leak: module-cache


class Handler:
    registry = []

    def __init__(self, name):
        self.name = name
        Handler.registry.append(self)


def test_class_registry():
    h = Handler("h%d" % next(_COUNTER))  # leak: class-registry
    assert h.name


class Parsed:
    def __init__(self, n):
        self.n = n


@functools.lru_cache(maxsize=None)
def parse(n):
    return Parsed(n)  # leak: lru-cache


def test_unbounded_lru_cache():
    assert parse(next(_COUNTER)).n >= 0


def test_logger_per_call():
    log = logging.getLogger("app.request.%d" % next(_COUNTER))  # leak: logger
    log.debug("handled")


class Token:
    pass


_TOKENS = []


def test_one_object_per_run():
    _TOKENS.append(Token())  # leak: one-per-run


class Table:
    def __init__(self):
        self.rows = list(range(1000))


_WARM = []


def test_warm_up_cache_passes():
    # Fills on the first run only, like a lazily built table: not a leak.
    if not _WARM:
        _WARM.append(Table())
    assert len(_WARM[0].rows) == 1000
