"""Calls mixedext from Python functions: argv[1] is the mode, argv[2] N.

ext: ingest() stashes N strings of 1,000 characters (1,001 bytes each).
threads: four threads each stash N with the GIL released around the copy.
fork: ingest(N), then a child process stashes more and exits.
ctypes: grab() keeps N blocks of libc.malloc(1000).
"""
import os
import sys
import threading

import mixedext


def ingest(n):
    for i in range(n):
        mixedext.stash(("%04d" % i) * 250)              # leak: ingest


def worker(n):
    for i in range(n):
        mixedext.stash_released(("%04d" % i) * 250)     # leak: worker


def grab(n, kept):
    import ctypes
    import ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    for _ in range(n):
        kept.append(libc.malloc(1000))                  # leak: ctypes


mode, n = sys.argv[1], int(sys.argv[2])
kept = []
if mode == "ext":
    ingest(n)
elif mode == "threads":
    threads = [threading.Thread(target=worker, args=(n,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
elif mode == "fork":
    ingest(n)
    pid = os.fork()
    if pid == 0:
        ingest(7)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    sys.exit(0 if status == 0 else 3)
elif mode == "ctypes":
    grab(n, kept)
