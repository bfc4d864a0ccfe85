"""Reference cycles with __del__: collected since Python 3.4, so no growth."""

finalized = 0


class Node:
    def __init__(self):
        self.peer = None

    def __del__(self):
        global finalized
        finalized += 1


def churn():
    a, b = Node(), Node()
    a.peer, b.peer = b, a
