"""Writing frames of the leakdiff pipe protocol (see leakdiff-protocol(7)).

A frame is ``TAG SP LENGTH LF PAYLOAD LF``.  Every write is preceded by a
check that the descriptor still is the pipe the recorder handed us (same
device and inode, same process); the first failed check or failed write
switches the wire off for good.  Nothing here ever prints anything.
"""

import os
import sys

try:
    import _signal
except ImportError:  # pragma: no cover - CPython always has it
    _signal = None

# Largest payload of one data frame.  The protocol allows 16 MiB; smaller
# frames keep the recorder's buffers small.
DATA_CHUNK = 1 << 20
# Largest payload of hello/begin/end/log frames allowed by the protocol.
CONTROL_MAX = 64 * 1024

_SIGPIPE = getattr(_signal, "SIGPIPE", None)
_CAN_MASK = (
    _SIGPIPE is not None
    and hasattr(_signal, "pthread_sigmask")
    and hasattr(_signal, "sigpending")
    and hasattr(_signal, "sigtimedwait")
)


def clean_text(value):
    """Return ``value`` as a str that encodes to valid UTF-8.

    File names and other OS strings may carry lone surrogates (from the
    surrogateescape error handler); those become U+FFFD.
    """
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:
            return "?"
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


class Wire:
    """One-way frame writer on an inherited pipe descriptor."""

    __slots__ = ("fd", "dev", "ino", "pid", "alive")

    def __init__(self, fd, dev, ino):
        self.fd = fd
        self.dev = dev
        self.ino = ino
        self.pid = os.getpid()
        self.alive = True

    def owns_fd(self):
        """True when the descriptor still refers to our pipe in our process."""
        if not self.alive:
            return False
        if os.getpid() != self.pid:
            self.alive = False
            return False
        try:
            st = os.fstat(self.fd)
        except Exception:
            self.alive = False
            return False
        if st.st_dev != self.dev or st.st_ino != self.ino:
            self.alive = False
            return False
        return True

    def kill(self):
        self.alive = False

    # -- frames -----------------------------------------------------------

    def send(self, tag, payload):
        """Send one frame; returns False (and stays off) on any failure."""
        if not self.owns_fd():
            return False
        head = b"%s %d\n" % (tag.encode("ascii"), len(payload))
        return self._write_all(b"".join((head, payload, b"\n")))

    def send_json(self, tag, obj, encode):
        payload = encode(obj)
        if len(payload) > CONTROL_MAX:
            return False
        return self.send(tag, payload)

    def send_data(self, blob):
        """Send ``blob`` as consecutive data frames of at most DATA_CHUNK."""
        view = memoryview(blob)
        for start in range(0, len(view), DATA_CHUNK):
            if not self.send("data", view[start:start + DATA_CHUNK].tobytes()):
                return False
        return True

    # -- the write loop ---------------------------------------------------

    def _write_all(self, data):
        """Write every byte of ``data``; a frame is never left half written.

        The pipe is blocking, so os.write may write part of the buffer (a
        signal arrived) and return.  os.write retries EINTR by itself and
        runs Python signal handlers meanwhile; if one of them raises (say
        KeyboardInterrupt) the exception is held until the frame is
        complete, then re-raised, so the stream stays well formed.
        SIGPIPE is blocked around the write so that a program that reset
        SIGPIPE to its default action is not killed when the recorder
        went away; a broken pipe just turns the wire off.
        """
        view = memoryview(data)
        total = len(view)
        done = 0
        held = None
        masked = None
        if _CAN_MASK:
            try:
                masked = _signal.pthread_sigmask(_signal.SIG_BLOCK, {_SIGPIPE})
            except Exception:
                masked = None
        broken = False
        try:
            while done < total:
                try:
                    done += os.write(self.fd, view[done:])
                except InterruptedError:
                    continue
                except OSError:
                    broken = True
                    self.alive = False
                    break
                except BaseException as exc:  # a signal handler raised
                    if held is None:
                        held = exc
        finally:
            if masked is not None:
                try:
                    if broken and _SIGPIPE not in masked:
                        # Consume the SIGPIPE our write raised, if any is
                        # pending, before unblocking it.
                        if _SIGPIPE in _signal.sigpending():
                            _signal.sigtimedwait({_SIGPIPE}, 0)
                    _signal.pthread_sigmask(_signal.SIG_SETMASK, masked)
                except Exception:
                    pass
        if held is not None:
            raise held
        return not broken


def parse_pipe_id(text):
    """Parse "DEV:INO" into two ints, or return None."""
    if not text:
        return None
    dev, sep, ino = text.partition(":")
    if not sep:
        return None
    try:
        dev = int(dev)
        ino = int(ino)
    except ValueError:
        return None
    if dev < 0 or ino < 0:
        return None
    return dev, ino


def running_version():
    """The interpreter version as platform.python_version() spells it."""
    return sys.version.split()[0] if sys.version else "%d.%d.%d" % sys.version_info[:3]
