#!/usr/bin/env python3
"""Regenerates the seed corpora under tests/fuzz/corpus/ from real runs.

    python3 tests/fuzz/make_corpus.py BUILD_DIR

BUILD_DIR is a build of this tree (it needs cli/leakdiff,
agents/native/libleakdiff-preload.so and tests/native/prog_static). The seeds are kept small, since a fuzzer
mutates every byte of them:

fuzz_snap    the fixtures of tests/data, a snapshot recorded from
             examples/python/leakyapp (gzip, as written), and the same
             snapshot trimmed to its leakyapp rows (gzip and plain JSON).
fuzz_wire    a stream captured from the Python agent (two snapshots, one
             with a non-ASCII label), one from the native agent, and
             streams built per leakdiff-protocol(7) that take the odd
             paths: data split inside a UTF-8 sequence, log and unknown
             frames, a bad checksum, an end for another snapshot, a
             snapshot cut off. Each starts with the chunking prefix that
             fuzz_wire.c reads.
fuzz_native  the raw document the native agent sent for prog_static, and
             variants whose modules are files every machine has
             (/proc/self/exe, libc, libstdc++) so that symbolisation does
             real work wherever the corpus is replayed.
fuzz_args    sizes, durations, limits and suppression files with names.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.join(HERE, "corpus")


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    # mtime 0: the same input gives the same bytes
    return gzip.compress(data, mtime=0)


# ------------------------------------------------------------ snapshots

def trim(doc, keep_sites=10):
    """The snapshot's leakyapp rows (and a few others) with the tables
    they refer to, renumbered."""
    strings, frames = doc["strings"], doc["frames"]

    def is_app(stack):
        return any("leakyapp" in strings[frames[f][0]] for f in stack)

    sites = [s for s in doc["sites"] if is_app(s[2])][:keep_sites] + doc["sites"][:3]
    type_sites = [t for t in doc.get("type_sites", []) if is_app(t[3])][:keep_sites]
    types_used = sorted({t[0] for t in type_sites} | set(range(min(8, len(doc["types"])))))
    new_type = {old: new for new, old in enumerate(types_used)}
    frames_used = sorted({f for s in sites for f in s[2]} | {f for t in type_sites for f in t[3]})
    new_frame = {old: new for new, old in enumerate(frames_used)}
    str_used = set()
    for f in frames_used:
        fr = frames[f]
        str_used |= {fr[0], fr[2]}
        if len(fr) > 4 and fr[4] >= 0:
            str_used.add(fr[4])
    for t in types_used:
        str_used.add(doc["types"][t][0])
    str_used = sorted(str_used)
    new_str = {old: new for new, old in enumerate(str_used)}

    def frame(fr):
        fr = list(fr)
        fr[0], fr[2] = new_str[fr[0]], new_str[fr[2]]
        if len(fr) > 4 and fr[4] >= 0:
            fr[4] = new_str[fr[4]]
        return fr

    t = dict(doc)
    t["strings"] = [strings[i] for i in str_used]
    t["frames"] = [frame(frames[f]) for f in frames_used]
    t["types"] = [[new_str[doc["types"][i][0]]] + doc["types"][i][1:] for i in types_used]
    t["sites"] = [[s[0], s[1], [new_frame[f] for f in s[2]]] for s in sites]
    t["type_sites"] = [[new_type[x[0]], x[1], x[2], [new_frame[f] for f in x[3]]] for x in type_sites]
    t["hints"] = doc.get("hints", [])[:12]
    t["meta"] = dict(doc["meta"], roots=doc["meta"].get("roots", [])[:3])
    t.pop("totals", None)  # derived from the tables when absent
    return json.dumps(t, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def snap_seeds(build, tmp):
    for name in sorted(os.listdir(os.path.join(SOURCE, "tests", "data"))):
        if name.endswith(".snap"):
            shutil.copy(os.path.join(SOURCE, "tests", "data", name),
                        os.path.join(CORPUS, "fuzz_snap", "fixture-" + name))
    env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE, "examples", "python"))
    path = os.path.join(tmp, "app.snap")
    subprocess.run([os.path.join(build, "cli", "leakdiff"), "record", "-q", "--depth=4", "-o", path,
                    "--", sys.executable, "-m", "leakyapp", "--requests", "50"],
                   env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    with open(path, "rb") as f:
        raw = f.read()
    out("fuzz_snap", "leakyapp-50.snap", raw)
    doc = json.loads(gzip.decompress(raw))
    small = trim(doc)
    out("fuzz_snap", "leakyapp-trimmed.json", small)
    out("fuzz_snap", "leakyapp-trimmed.snap", gz(small))
    # Two gzip members make one stream.
    half = len(small) // 2
    out("fuzz_snap", "leakyapp-two-members.snap", gz(small[:half]) + gz(small[half:]))
    out("fuzz_snap", "invisible-names.json", invisible_names())
    return small


def invisible_names():
    """A snapshot whose executable, file, function, type and label names
    each carry every character the README promises never comes out raw
    (C0 and C1 controls, zero-width and bidi characters, separators), so
    that the replay checks every report format against each of them."""
    cps = list(range(1, 0x20)) + [0x7f] + list(range(0x80, 0xa0)) + list(range(0x200b, 0x2010)) + \
        list(range(0x2028, 0x202f)) + list(range(0x2066, 0x206a)) + [0xfeff]
    evil = "".join("x" + chr(c) for c in cps)
    doc = {
        "format": "leakdiff-snapshot", "version": 1,
        "meta": {"runtime": "python", "executable": "run" + evil + ".snap", "label": "l" + evil,
                 "command": ["python3", "a" + evil]},
        "strings": ["app" + evil + ".py", "f" + evil, "app.Leak" + evil],
        "frames": [[0, 1, 1]],
        "types": [[2, 3, 96]],
        "sites": [[3, 96, [0]]],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------ pipe streams

def frame(tag, payload):
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return b"%s %d\n%s\n" % (tag.encode(), len(payload), payload)


def wire_prefix(sizes, control=0):
    """What fuzz_wire.c reads before the stream: n-1, n chunk sizes, control."""
    return bytes([len(sizes) - 1]) + bytes(sizes) + bytes([control])


def snapshot_frames(seq, doc, label="", trigger="api", pieces=(), crc=None, end_seq=None):
    f = frame("begin", {"seq": seq, "label": label, "trigger": trigger})
    cuts = [0] + list(pieces) + [len(doc)]
    for a, b in zip(cuts, cuts[1:]):
        f += frame("data", doc[a:b])
    f += frame("end", {"seq": seq if end_seq is None else end_seq, "bytes": len(doc),
                       "crc32": zlib.crc32(doc) if crc is None else crc})
    return f


def capture_python(tmp):
    """The frames the Python agent writes for a small program."""
    r, w = os.pipe()
    st = os.fstat(w)
    agent = os.path.join(SOURCE, "agents", "python")
    env = dict(os.environ, PYTHONPATH="%s/boot:%s" % (agent, agent), LEAKDIFF_FD=str(w),
               LEAKDIFF_PIPE="%d:%d" % (st.st_dev, st.st_ino), LEAKDIFF_DEPTH="1",
               LEAKDIFF_SIGNAL="12")
    code = ("import leakdiff\nclass Leaky: pass\nkeep = [Leaky() for _ in range(20)]\n"
            "leakdiff.snapshot('caf\u00e9 \u2603')\nkeep.append({'k': 'v'})\n")
    p = subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=(w,), cwd=tmp)
    os.close(w)
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    p.wait()
    return data


def capture_native(build, tmp):
    raw = os.path.join(tmp, "native.stream")
    subprocess.run([os.path.join(build, "cli", "leakdiff"), "record", "-q", "--depth=8",
                    "-o", os.path.join(tmp, "n.snap"), "--tee-stream", raw, "--",
                    os.path.join(build, "tests", "native", "prog_static"), "200"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(raw, "rb") as f:
        return f.read()


def data_payloads(stream):
    """The concatenated data payloads of the first snapshot in a stream."""
    doc, i = b"", 0
    while i < len(stream):
        nl = stream.index(b"\n", i)
        tag, n = stream[i:nl].split(b" ")
        n = int(n)
        if tag == b"data":
            doc += stream[nl + 1:nl + 1 + n]
        if tag == b"end":
            break
        i = nl + 1 + n + 1
    return doc


def wire_seeds(small, py_stream, native_stream):
    hello = frame("hello", {"protocol": "leakdiff-pipe", "version": 1, "runtime": "python",
                            "agent": "fuzz-seed 1", "pid": 4242, "executable": "/usr/bin/python3"})
    label = "caf\u00e9 \u2603"
    labelled = small.replace(b'"label":"exit"', ('"label":"%s"' % label).encode("utf-8"))
    # cut inside the UTF-8 of the label, and right before the closing brace
    at = labelled.index("\u2603".encode("utf-8")) + 1
    out("fuzz_wire", "python-agent.stream", wire_prefix([255, 0, 7]) + py_stream)
    out("fuzz_wire", "native-agent.stream", wire_prefix([1, 2, 3, 200]) + native_stream)
    s = (hello + frame("log", {"level": "warning", "message": "tracemalloc \x1b[31mstarted late"})
         + snapshot_frames(1, labelled, label, "signal", pieces=(at, len(labelled) - 1))
         + frame("future", "unknown frames are skipped") + frame("data", "outside a snapshot")
         + frame("data", b"") + snapshot_frames(2, small, "", "exit"))
    out("fuzz_wire", "split-utf8.stream", wire_prefix([3, 17, 64], 0x81) + s)
    s = (hello + snapshot_frames(1, small, "bad", "api", crc=12345)
         + snapshot_frames(2, small, "other", "api", end_seq=7)
         + frame("begin", {"seq": 3, "label": "x", "trigger": "interval"}) + frame("data", small[:100])
         + frame("begin", {"seq": 4, "label": "cut", "trigger": "exit"}) + frame("data", small[:200]))
    out("fuzz_wire", "dropped.stream", wire_prefix([5], 0x82) + s)
    s = hello + b"data 5\x00junk\n"
    out("fuzz_wire", "nul-header.stream", wire_prefix([9]) + s)
    s = frame("hello", {"protocol": "leakdiff-pipe", "version": 2}) + frame("begin", {"seq": 1})
    out("fuzz_wire", "version-2.stream", wire_prefix([1]) + s)
    native_doc = data_payloads(native_stream)
    s = (frame("hello", {"protocol": "leakdiff-pipe", "version": 1, "runtime": "native",
                         "agent": "fuzz-seed", "pid": 1})
         + snapshot_frames(1, native_doc, "exit", "exit", pieces=(1, 2, 3)))
    out("fuzz_wire", "native-split.stream", wire_prefix([2, 250]) + s)
    return native_doc


# ------------------------------------------------------------ native documents

def libpath(name):
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return "/lib/" + name


def native_seeds(native_doc):
    out("fuzz_native", "prog_static.json", native_doc)
    doc = json.loads(native_doc)
    # Portable: the program's module is whatever runs the corpus, no build ID.
    for m in doc["modules"]:
        if m["path"].endswith("/prog_static"):
            m["path"] = "/proc/self/exe"
            m["build_id"] = ""
    doc["modules"] = [m for m in doc["modules"] if "leakdiff-preload" not in m["path"]]
    out("fuzz_native", "self-exe.json", json.dumps(doc, separators=(",", ":")))
    base = 0x7f0000000000
    hand = {
        "format": "leakdiff-native-raw", "version": 1,
        "modules": [
            {"path": "/proc/self/exe", "start": 0x555555554000, "end": 0x555555654000, "offset": 0,
             "bias": 0x555555554000, "build_id": ""},
            {"path": libpath("libstdc++.so.6"), "start": base, "end": base + 0x200000, "offset": 0,
             "bias": base, "build_id": ""},
            {"path": libpath("libc.so.6"), "start": base + 0x1000000, "end": base + 0x1200000,
             "offset": 0, "bias": base + 0x1000000, "build_id": "00ff"},
            {"path": "[vdso]", "start": base + 0x2000000, "end": base + 0x2002000, "bias": base + 0x2000000},
            {"path": "/nonexistent/libgone.so", "start": base + 0x3000000, "end": base + 0x3001000,
             "offset": 0, "bias": base + 0x3000000},
        ],
        "sites": [
            [3, 96, [0x555555555123, 0x555555556001, base + 0xa1234, base + 0x1029d90], 3, 96],
            [1, 4096, [base + 0x100000, base + 0x123456, base + 0x2000100], 9, 9000],
            [2, 48, [base + 0x3000010, 0x10, 0, 0x555555554001]],
            [0, 0, [0x555555560000]],
            [1, 8, []],
        ],
        "totals": {"heap_bytes": 4240, "heap_blocks": 7},
        "meta": {"runtime": "native", "agent": "fuzz-seed", "pid": 1, "seq": 1, "label": "\u2603",
                 "trigger": "exit", "time": "2026-01-01T00:00:00.000Z", "executable": "/proc/self/exe",
                 "host": "h", "depth": 8, "untracked": 0, "elapsed_ms": 0.5},
    }
    out("fuzz_native", "system-libs.json", json.dumps(hand, ensure_ascii=False, separators=(",", ":")))


# ------------------------------------------------------------ arguments

def args_seeds():
    with open(os.path.join(SOURCE, "tests", "data", "suppressions.txt"), "rb") as f:
        sup = f.read()
    seeds = {
        "size.txt": b"1.5 KiB",
        "size-plain.txt": b"9007199254740993",
        "percent.txt": b"2.5%",
        "duration.txt": b"500ms",
        "minutes.txt": b"1.5min",
        "suppressions.txt": sup + b"\x00leakyapp.session.Session\x00login\x00/usr/lib/python3.11/json/decoder.py",
        "lsan.txt": (b"# LeakSanitizer file\nleak:libfoo.so\nrace:ignored\ntype:^app.Cache$\n"
                     b"function:*handler?\nfile:[weird]\\path\x00app.Cache\x00my_handlerX\x00[weird]\\path"),
        "anchors.txt": b"^\n\x00^a*b$\x00a[b]c",
    }
    for name, data in seeds.items():
        out("fuzz_args", name, data)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="leakdiff-corpus-")
    try:
        for t in ("fuzz_snap", "fuzz_wire", "fuzz_native", "fuzz_args"):
            d = os.path.join(CORPUS, t)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        small = snap_seeds(build, tmp)
        native_doc = wire_seeds(small, capture_python(tmp), capture_native(build, tmp))
        native_seeds(native_doc)
        args_seeds()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
