"""Keeps N blocks of 1,000 bytes from libc's malloc (ctypes), N = argv[1]."""
import ctypes
import ctypes.util
import sys

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
kept = []


def grab(n):
    for _ in range(n):
        kept.append(libc.malloc(1000))


grab(int(sys.argv[1]))
