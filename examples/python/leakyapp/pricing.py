"""Price quotes memoised by an unbounded lru_cache."""
import functools


class Quote:
    def __init__(self, item):
        self.item = item
        self.cents = item * 7 % 1000


@functools.lru_cache(maxsize=None)
def quote(item):
    return Quote(item)  # leak: lru
