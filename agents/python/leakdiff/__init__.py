"""leakdiff: heap snapshots on demand, for programs run under ``leakdiff record``.

    import leakdiff

    warm_up()
    leakdiff.snapshot("warm")      # a snapshot now; returns its number
    serve_requests()
    leakdiff.snapshot("after")

Outside ``leakdiff record`` (or when the agent is off) both functions do
nothing: snapshot() returns None and recording() returns False.  Importing
this module starts nothing.
"""

import sys as _sys

__all__ = ["snapshot", "recording"]
__version__ = "0.1.0"


def _the_agent():
    return _sys.modules.get("leakdiff._agent")


def snapshot(label=""):
    """Take a heap snapshot now, labelled ``label``.

    Returns the snapshot's sequence number (1 for the first of the process)
    when running under ``leakdiff record``, otherwise None.  Also None when
    the snapshot could not be taken or was deferred because this thread was
    already taking one.
    """
    agent = _the_agent()
    if agent is None:
        return None
    return agent.api_snapshot(label)


def recording():
    """True when this process is being recorded by ``leakdiff record``."""
    agent = _the_agent()
    return bool(agent is not None and agent.active())
