"""leakdiff bootstrap, imported by site.py at interpreter start-up.

``leakdiff record`` puts this directory (boot/) and the one holding the
``leakdiff`` package in front of PYTHONPATH.  When LEAKDIFF_FD is set, this
module

1. removes the two agent directories from PYTHONPATH in the environment and
   has the agent read and remove the LEAKDIFF_* variables, so that programs
   the target starts are not traced;
2. starts the agent (leakdiff._agent.start).  Whatever goes wrong, nothing
   escapes and nothing is printed; if the agent cannot start, the variables
   are still removed and the descriptor is made non-inheritable.

In every case it then chains to the ``sitecustomize`` that would have been
imported without leakdiff (Debian's /etc/python3.X/sitecustomize.py, a
virtualenv's, ...): boot/ leaves sys.path for good and the name is imported
again.  The package directory stays on sys.path so that ``import leakdiff``
works in the program.

sys.modules["sitecustomize"] ends up being the chained module when there is
one (the program sees what it would see without leakdiff), this module
otherwise.  Errors raised by the chained module propagate, so site.py
reports them exactly as it would have without leakdiff.
"""

import os as _os
import sys as _sys


def _leakdiff_dirs():
    boot = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(boot)
    return boot, root


def _same_dir(entry, dirs):
    if not isinstance(entry, str) or not entry:
        return False
    try:
        return _os.path.realpath(entry) in dirs or _os.path.abspath(entry) in dirs
    except Exception:
        return False


def _scrub_pythonpath(dirs):
    value = _os.environ.get("PYTHONPATH")
    if value is None:
        return
    kept = [e for e in value.split(_os.pathsep) if not _same_dir(e, dirs)]
    if any(kept):
        _os.environ["PYTHONPATH"] = _os.pathsep.join(kept)
    else:
        del _os.environ["PYTHONPATH"]


def _fallback_scrub():
    """Used only when the agent cannot even be imported."""
    for name in ("LEAKDIFF_FD", "LEAKDIFF_PIPE", "LEAKDIFF_DEPTH",
                 "LEAKDIFF_SIGNAL"):
        value = _os.environ.pop(name, None)
        if name == "LEAKDIFF_FD" and value:
            try:
                _os.set_inheritable(int(value), False)
            except Exception:
                pass


def _boot():
    boot, root = _leakdiff_dirs()
    dirs = set()
    for d in (boot, root):
        dirs.add(d)
        dirs.add(_os.path.realpath(d))
    if "LEAKDIFF_FD" not in _os.environ:
        return
    try:
        _scrub_pythonpath(dirs)
    except Exception:
        pass
    try:
        from leakdiff import _agent
    except BaseException:
        try:
            _fallback_scrub()
        except Exception:
            pass
        return
    try:
        config = _agent.read_environment()
        _agent.start(config, boot_file=_sys._getframe().f_code.co_filename)
    except BaseException:
        try:
            _fallback_scrub()
        except Exception:
            pass


def _chain():
    """Import the sitecustomize that our directory shadows, if any."""
    boot, _root = _leakdiff_dirs()
    boot_real = _os.path.realpath(boot)
    _sys.path[:] = [
        e for e in _sys.path
        if not (isinstance(e, str) and e and _os.path.realpath(e) == boot_real)
    ]
    me = _sys.modules.get(__name__)
    _sys.modules.pop("sitecustomize", None)
    try:
        other = __import__("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            _sys.modules["sitecustomize"] = me
            raise
        other = None
    except BaseException:
        _sys.modules["sitecustomize"] = me
        raise
    if other is None or other is me:
        _sys.modules["sitecustomize"] = me
    else:
        # The import machinery returns sys.modules["sitecustomize"] to
        # site.py once we finish, so the chained module takes our place.
        _sys.modules["sitecustomize"] = other


if __name__ == "sitecustomize":
    try:
        _boot()
    except BaseException:
        pass
    _chain()
