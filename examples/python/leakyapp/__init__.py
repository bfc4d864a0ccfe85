"""A small service with the leaks people actually ship.

Each module leaks one way: a class-level registry, a module-level cache
that never evicts, an unbounded functools.lru_cache, a logger created per
request (the leak is inside the standard library), and reference cycles with
__del__ that are collected (the control: no growth). `python3 -m leakyapp`
serves N fake requests so that two runs with different N differ by a count
known in advance.
"""
