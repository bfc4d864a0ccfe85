"""Keeps argv[1] NumPy arrays of 1,000 float64 zeros (8,000 bytes of data each)."""
import sys

import numpy

frames = []


def grab(n):
    for _ in range(n):
        frames.append(numpy.zeros(1000))    # leak: array


grab(int(sys.argv[1]))
