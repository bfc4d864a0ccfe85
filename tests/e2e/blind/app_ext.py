"""Calls leakyext.stash() with a fresh 1 KiB string N times (argv[1]);
the extension keeps a malloc'ed copy of each, which no hook sees."""
import sys

import leakyext


def ingest(n):
    for i in range(n):
        leakyext.stash(("%06d" % i) * 171)   # 1,026 characters


ingest(int(sys.argv[1]))
