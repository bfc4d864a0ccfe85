#!/usr/bin/env python3
"""Constants that the recorder, the two agents and the documentation must
agree on, checked where each is spelled.

The agents run inside other people's processes and cannot include the
recorder's headers at run time (the Python agent is plain source, the native
one a preloaded library), so a few values exist once per language. A change
in one place that is not made in the others fails here, naming the place:

- the version (meson.build, the Python package, the Python agent's hello);
- the default and largest traceback depth (recorder, both agents, the
  readers, the man pages);
- the LEAKDIFF_* environment variables: every one the code reads or sets is
  documented, and every one the recorder hands a target is read by an agent;
- the pipe protocol's frame tags: what the agents send is what the
  recorder's parser knows, and what leakdiff-protocol(7) describes.
"""
import os
import re
import subprocess
import tempfile
import unittest

import harness
from harness import SOURCE, leakdiff


def read(*parts):
    with open(os.path.join(SOURCE, *parts), encoding="utf-8") as f:
        return f.read()


def tracked(*roots, ext=(".c", ".h", ".py")):
    """Source files below roots, as git tracks them (untracked files of a
    work tree included, so a new file is checked before its commit)."""
    out = subprocess.run(["git", "-C", SOURCE, "ls-files", "--cached", "--others", "--exclude-standard",
                          "--"] + list(roots), stdout=subprocess.PIPE, universal_newlines=True)
    if out.returncode:
        # Not a git checkout (an unpacked release): walk the directories.
        files = []
        for r in roots:
            for d, _, names in os.walk(os.path.join(SOURCE, r)):
                files += [os.path.relpath(os.path.join(d, n), SOURCE) for n in names]
    else:
        files = out.stdout.split()
    return sorted(f for f in files if f.endswith(ext) and os.path.exists(os.path.join(SOURCE, f)))


def one(pattern, text, where):
    """The single match of pattern's first group in text."""
    found = re.findall(pattern, text, re.M)
    if len(found) != 1:
        raise AssertionError("%s: expected one match of %r, found %r" % (where, pattern, found))
    return found[0]


class Version(unittest.TestCase):
    def test_one_version(self):
        project = one(r"^\s*version:\s*'([^']+)'", read("meson.build"), "meson.build")
        package = one(r'^__version__ = "([^"]+)"', read("agents", "python", "leakdiff", "__init__.py"),
                      "leakdiff/__init__.py")
        agent = one(r'^VERSION = "([^"]+)"', read("agents", "python", "leakdiff", "_agent.py"),
                    "leakdiff/_agent.py")
        self.assertEqual((package, agent), (project, project))
        r = leakdiff("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(project, r.stdout)

    def test_native_agent_takes_the_build_version(self):
        # The native agent's name in its hello comes from config.h, which
        # meson writes from the project version: no literal to drift.
        for path in tracked("agents/native", ext=(".c", ".h")):
            code = re.sub(r"/\*.*?\*/", "", read(path), flags=re.S)
            self.assertIsNone(re.search(r'"leakdiff-native \d', code), path)


class Depth(unittest.TestCase):
    def test_default_depth(self):
        record = one(r"\.depth = (\d+)", read("cli", "cmd-record.c"), "cli/cmd-record.c")
        native = one(r"^#define LD_AGENT_DEFAULT_DEPTH (\d+)", read("agents", "native", "agent.h"),
                     "agents/native/agent.h")
        python = one(r"^DEFAULT_DEPTH = (\d+)", read("agents", "python", "leakdiff", "_agent.py"),
                     "leakdiff/_agent.py")
        self.assertEqual({record, native, python}, {record}, "record %s, native agent %s, Python agent %s"
                         % (record, native, python))
        man = one(r"^\*--depth\*=_N_\n\tRecord [^(]*\(default (\d+)\)", read("man", "leakdiff-record.1.scd"),
                  "leakdiff-record(1)")
        self.assertEqual(man, record)
        protocol = one(r"uses its own default, (\d+)\.", read("man", "leakdiff-protocol.7.scd"),
                       "leakdiff-protocol(7)")
        self.assertEqual(protocol, record)

    def test_largest_depth(self):
        places = {
            "core/snapshot.h": one(r"^#define LD_DEPTH_MAX (\d+)", read("core", "snapshot.h"), "snapshot.h"),
            "agents/native/agent.h": one(r"^#define LD_AGENT_MAX_DEPTH (\d+)", read("agents", "native", "agent.h"),
                                         "agent.h"),
            "agents/python/ext/sampler.c": one(r"^#define MAX_DEPTH (\d+)",
                                               read("agents", "python", "ext", "sampler.c"), "sampler.c"),
            "leakdiff/_agent.py": one(r"^MAX_DEPTH = (\d+)", read("agents", "python", "leakdiff", "_agent.py"),
                                      "_agent.py"),
            "leakdiff/_snapshot.py": one(r"^MAX_FRAMES = (\d+)",
                                         read("agents", "python", "leakdiff", "_snapshot.py"), "_snapshot.py"),
            "leakdiff-record(1)": one(r"^\tRecord up to _N_ frames, from 1 to (\d+),",
                                      read("man", "leakdiff-record.1.scd"), "leakdiff-record(1)"),
            "leakdiff-snapshot(5)": one(r"tracebacks longer than (\d+) frames",
                                        read("man", "leakdiff-snapshot.5.scd"), "leakdiff-snapshot(5)"),
        }
        self.assertEqual(len(set(places.values())), 1, places)
        limit = int(places["core/snapshot.h"])
        # The recorder's option takes exactly that range (125: its usage
        # errors, as for its other failures).
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "x.snap")
            for depth, ok in ((limit, True), (limit + 1, False), (0, False)):
                with self.subTest(depth=depth):
                    r = leakdiff("record", "--depth=%d" % depth, "-o", out, "--", "true")
                    if ok:
                        self.assertNotIn("--depth", r.stderr)
                    else:
                        self.assertEqual(r.returncode, 125, r.stderr)
                        self.assertIn("--depth takes a whole number from 1 to %d" % limit, r.stderr)


ENV = re.compile(r"\bLEAKDIFF_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
# Variables of the test suite and the build, not of leakdiff itself.
TEST_ONLY = {"LEAKDIFF_SOURCE", "LEAKDIFF_SANITIZED", "LEAKDIFF_TEST_PYTHON", "LEAKDIFF_UPDATE_GOLDEN",
             "LEAKDIFF_FUZZ_PLAIN_PATHS"}


def env_names(paths):
    found = {}
    for p in paths:
        for name in ENV.findall(read(p)):
            found.setdefault(name, set()).add(p)
    return found


class Environment(unittest.TestCase):
    def test_every_variable_documented(self):
        code = env_names(tracked("agents", "cli", "core", "formats"))
        docs = "".join(read("man", f) for f in sorted(os.listdir(os.path.join(SOURCE, "man")))
                       if f.endswith(".scd"))
        documented = set(ENV.findall(docs))
        for name in sorted(set(code) - TEST_ONLY):
            with self.subTest(variable=name):
                self.assertIn(name, documented, "used in %s but in no man page" % sorted(code[name]))
        # And the pages name no variable the code has forgotten.
        for name in sorted(documented):
            with self.subTest(documented=name):
                self.assertIn(name, code, "documented but used nowhere in the code")

    def test_what_the_recorder_sets_an_agent_reads(self):
        recorder = env_names(tracked("cli", "formats", "core"))
        agents = env_names(tracked("agents"))
        # The recorder's own settings, read by the recorder itself.
        own = {"LEAKDIFF_MAX_SNAPSHOT", "LEAKDIFF_AGENT_DIR"}
        for name in sorted(set(recorder) - own - TEST_ONLY):
            with self.subTest(variable=name):
                self.assertIn(name, agents, "the recorder (%s) passes it, no agent reads it"
                              % sorted(recorder[name]))


class ProtocolTags(unittest.TestCase):
    def parser_tags(self):
        body = one(r"\} tags\[\] = \{(.*?)\};", read("formats", "wire.c").replace("\n", " "), "formats/wire.c")
        return set(re.findall(r'\{ "([a-z]+)",', body))

    def test_agents_send_what_the_parser_knows(self):
        known = self.parser_tags()
        self.assertTrue({"hello", "begin", "data", "end", "log"} <= known, known)
        sent = set()
        for path in tracked("agents/native", ext=(".c",)):
            sent |= set(re.findall(r'(?:send_control|ld_pipe_frame)\([^"]*"([a-z]+)"', read(path)))
        for path in tracked("agents/python/leakdiff", ext=(".py",)):
            sent |= set(re.findall(r'\.send(?:_json)?\(\s*"([a-z]+)"', read(path)))
        self.assertTrue({"hello", "begin", "data", "end"} <= sent, sent)
        self.assertEqual(sent - known, set(), "sent by an agent, unknown to formats/wire.c")

    def test_protocol_page_describes_every_tag(self):
        page = read("man", "leakdiff-protocol.7.scd")
        frames = page.split("# FRAMES", 1)[1].split("\n# ", 1)[0]
        described = set(re.findall(r"^\*([a-z]+)\*$", frames, re.M))
        self.assertEqual(described, self.parser_tags())


if __name__ == "__main__":
    harness.main()
