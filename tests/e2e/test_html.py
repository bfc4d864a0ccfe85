#!/usr/bin/env python3
"""The HTML report without a browser (issue 14; tests/browser has the one
with): the page embeds the JSON report's own document, so there is one
data model; options apply as to the other formats; nothing is fetched; the
flame graph's tree adds up exactly; frames too narrow to draw are summed per
parent while the tables keep every row up to --top; and hostile names stay
inside the data block, where they cannot end it."""
import gzip
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TempDirCase, leakdiff  # noqa: E402

DATA = os.path.join(harness.SOURCE, "tests", "data")
BEFORE, MIDDLE, AFTER = (os.path.join(DATA, n) for n in ("before.snap", "middle.snap", "after.snap"))
BLOCK = re.compile(r'<script type="application/json" id="leakdiff-data">(.*?)</script>', re.S)


def page(*args, status=0):
    r = leakdiff(*args)
    if r.returncode != status:
        raise AssertionError("leakdiff %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def embedded(html):
    blocks = BLOCK.findall(html)
    assert len(blocks) == 1, "%d data blocks" % len(blocks)
    return json.loads(blocks[0])


def nodes(doc):
    cols = doc["flame"]["columns"]
    return [dict(zip(cols, row)) for row in doc["flame"]["nodes"]]


class OneDataModel(TempDirCase):
    def test_diff_page_embeds_the_json_report(self):
        for extra, status in (((), 0), (("--top=0",), 0), (("--by=site", "-n", "2"), 0),
                              (("--max-total-growth=1KiB",), 1), (("--depth=1", "--match=exact"), 0)):
            with self.subTest(options=extra):
                html = page("diff", "--format=html", *extra, BEFORE, AFTER, status=status)
                want = json.loads(page("diff", "--format=json", *extra, BEFORE, AFTER, status=status))
                got = embedded(html)
                self.assertIn("flame", got)
                del got["flame"]
                self.assertEqual(got, want)

    def test_trend_and_show(self):
        got = embedded(page("diff", "--format=html", BEFORE, MIDDLE, AFTER))
        del got["flame"]
        self.assertEqual(got, json.loads(page("diff", "--format=json", BEFORE, MIDDLE, AFTER)))
        self.assertEqual(got["snapshots"], 3)
        # The trend marks: one per step, as many set as grew_in.
        rows = got["types"] + got["sites"] + [s for t in got["types"] for s in t["sites"]]
        self.assertTrue(rows)
        for row in rows:
            self.assertEqual(len(row["grew"]), 2)
            self.assertEqual(sum(row["grew"]), row["grew_in"])
        got = embedded(page("show", "--format=html", AFTER))
        del got["flame"]
        self.assertEqual(got, json.loads(page("show", "--format=json", AFTER)))

    def test_trend_steps(self):
        """"steps", the byte change of each row in each step, is exactly what
        the two-snapshot diffs of the consecutive pairs say about that row
        (0 where they do not list it), and adds up to the row's change."""
        doc = embedded(page("diff", "--format=html", "--top=0", BEFORE, MIDDLE, AFTER))
        pairs = [json.loads(page("diff", "--format=json", "--top=0", a, b)) for a, b in ((BEFORE, MIDDLE),
                                                                                           (MIDDLE, AFTER))]

        def key(site):
            return tuple((f["function"], f["file"], f.get("line")) for f in site["frames"])

        for kind, k in (("types", lambda r: r["name"]), ("sites", key)):
            self.assertTrue(doc[kind])
            for row in doc[kind]:
                want = [{k(r): r["bytes_delta"] for r in p[kind]}.get(k(row), 0) for p in pairs]
                self.assertEqual(row["steps"], want, k(row))
                self.assertEqual(sum(row["steps"]), row["bytes_delta"], k(row))
        for t in doc["types"]:
            for row in t["sites"]:
                self.assertEqual(len(row["steps"]), 2)
                self.assertEqual(sum(row["steps"]), row["bytes_delta"], (t["name"], key(row)))
        # The recording's leak grows by the same 360,000 bytes in both steps;
        # the module-level site holds still, then shrinks by 640 bytes.
        by_function = {s["frames"][0]["function"]: s["steps"] for s in doc["sites"]}
        self.assertEqual(by_function["remember"], [360000, 360000])
        self.assertEqual(by_function["<module>"], [0, -640])
        # A plain diff has neither "grew" nor "steps".
        for row in embedded(page("diff", "--format=html", BEFORE, AFTER))["sites"]:
            self.assertNotIn("steps", row)
            self.assertNotIn("grew", row)

    def test_one_offline_file(self):
        html = page("diff", "--format=html", BEFORE, AFTER)
        self.assertTrue(html.startswith("<!DOCTYPE html>\n"))
        self.assertTrue(html.endswith("</html>\n"))
        # Scripts and styles are inline: nothing names a resource to load.
        for pattern in (r"<script[^>]*\bsrc=", r"<link\b", r"@import", r"url\(\s*['\"]?(https?:|//)",
                        r"<(img|iframe|object|embed)\b", r"\bfetch\(", r"XMLHttpRequest"):
            self.assertIsNone(re.search(pattern, html, re.I), pattern)
        self.assertEqual(len(re.findall(r"<script\b", html, re.I)), 3)
        # Only textContent, d3's .text() and setAttribute put data on the page.
        with open(os.path.join(harness.SOURCE, "formats", "html", "report.js")) as f:
            script = f.read()
        self.assertNotIn("innerHTML", script)
        self.assertNotIn(".html(", script)
        self.assertNotIn("insertAdjacentHTML", script)


class FlameTree(TempDirCase):
    def test_root_adds_up_every_site(self):
        doc = embedded(page("diff", "--format=html", BEFORE, AFTER))
        sites = json.loads(page("diff", "--format=json", "--top=0", BEFORE, AFTER))["sites"]
        root = nodes(doc)[0]
        self.assertEqual(root["parent"], -1)
        self.assertEqual(root["growth"], sum(max(0, s["bytes_delta"]) for s in sites))
        self.assertEqual(root["after"] - root["before"], sum(s["bytes_delta"] for s in sites))
        self.assertEqual(root["count_after"] - root["count_before"], sum(s["count_delta"] for s in sites))
        self.assertEqual(root["before"], doc["total"]["bytes_before"])
        self.assertEqual(root["after"], doc["total"]["bytes_after"])

    def test_frames_merge_by_function(self):
        rows = nodes(embedded(page("diff", "--format=html", BEFORE, AFTER)))
        by_name = {}
        for r in rows:
            by_name.setdefault(r["name"], []).append(r)
        # <module> -> handle -> {remember, login -> Session.__init__, (1 smaller)}, and
        # <module> -> login: login twice, once per caller; the rest once.
        for name in ("<module>", "handle", "remember", "Session.__init__"):
            self.assertEqual(len(by_name[name]), 1, name)
        self.assertEqual(sorted(rows[r["parent"]]["name"] for r in by_name["login"]), ["<module>", "handle"])
        self.assertEqual(len(rows), 8)
        login = next(r for r in by_name["login"] if rows[r["parent"]]["name"] == "handle")
        self.assertEqual(login["growth"], 320000)
        self.assertEqual(rows[by_name["handle"][0]["parent"]]["name"], "<module>")
        self.assertIs(rows[by_name["Session.__init__"][0]["parent"]], login)
        remember = by_name["remember"][0]
        self.assertEqual((remember["file"], remember["line"], remember["text"]),
                         ("app/cache.py", 7, "self.store[key] = value"))
        self.assertEqual(remember["growth"], 720000)
        self.assertEqual((remember["count_before"], remember["count_after"]), (10, 10010))
        self.assertEqual(remember["match"], "exact")
        self.assertEqual(remember["kind"], "python")
        # The logging site that did not change is under 0.1% of the later heap.
        self.assertEqual([r["name"] for r in rows if "smaller" in r["name"]], ["(1 smaller)"])
        self.assertEqual(rows[0]["sites"], 6)

    def test_interpreter_frames_fold(self):
        # The fixture's outer frames renamed as the interpreter's C code, in a
        # native snapshot: <module> and handle become one "(Python interpreter)".
        names = {"<module>": "PyRun_SimpleStringFlags", "handle": "_PyEval_EvalFrameDefault"}
        paths = []
        for src in (BEFORE, AFTER):
            with gzip.open(src, "rt") as f:
                doc = json.load(f)
            doc["meta"]["runtime"] = "native"
            doc["strings"] = [names.get(s, s) for s in doc["strings"]]
            paths.append(self.path(os.path.basename(src)))
            with gzip.open(paths[-1], "wt") as f:
                json.dump(doc, f)
        rows = nodes(embedded(page("diff", "--format=html", *paths)))
        folded = [r for r in rows if r["name"] == "(Python interpreter)"]
        self.assertEqual(len(folded), 1, [r["name"] for r in rows])
        self.assertEqual(folded[0]["parent"], 0)
        self.assertEqual(folded[0]["folded"], 2, "the longest run folded: both frames")
        self.assertEqual(folded[0]["growth"], rows[0]["growth"])
        index = rows.index(folded[0])
        self.assertEqual(sorted(r["name"] for r in rows if r["parent"] == index),
                         ["(1 smaller)", "login", "remember"])
        self.assertNotIn("_PyEval_EvalFrameDefault", [r["name"] for r in rows])

    def test_suppressed_sites_are_left_out(self):
        supp = self.path("s.supp")
        with open(supp, "w") as f:
            f.write("remember\n")
        rows = nodes(embedded(page("diff", "--format=html", "--suppress=" + supp, BEFORE, AFTER)))
        self.assertNotIn("remember", [r["name"] for r in rows])
        self.assertEqual(rows[0]["growth"], nodes(embedded(page("diff", "--format=html", BEFORE, AFTER)))[0]["growth"]
                         - 720000)

    def test_large_diff_is_summed_but_tables_keep_top(self):
        a, b = self.path("a.snap"), self.path("b.snap")
        r = subprocess.run([sys.executable, os.path.join(harness.SOURCE, "bench", "gensnap.py"), "--sites", "20000",
                            a, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        html = page("diff", "--format=html", "--top=40", a, b)
        doc = embedded(html)
        self.assertEqual(len(doc["sites"]), 40)
        rows = nodes(doc)
        root = rows[0]
        limit = 0.001 * max(root["after"], root["growth"])
        small = [r for r in rows if re.fullmatch(r"\(\d+ smaller\)", r["name"])]
        self.assertTrue(small, "a 20k-site diff has frames under 0.1%")
        children = {}
        for i, row in enumerate(rows):
            if i:
                self.assertLess(row["parent"], i, "parents come first")
                children.setdefault(row["parent"], []).append(row)
            if i and row not in small:
                self.assertGreaterEqual(max(row["after"], row["growth"]), limit, row)
        # Summing loses nothing: a parent's children add up to at most the parent
        # (less only by the sites that end at the parent itself).
        for p, kids in children.items():
            for key in ("before", "after", "growth", "sites"):
                self.assertLessEqual(sum(k[key] for k in kids), rows[p][key], (rows[p]["name"], key))
        self.assertEqual(sum(k["sites"] for k in children[0]), root["sites"])
        self.assertEqual(root["sites"], 20100, "every site of either snapshot, gone ones included")
        self.assertLess(len(html), 2 << 20)


class Hostile(TempDirCase):
    NAMES = {
        "login": "</script><script>alert(1)</script>",
        "app.session.Session": "app.<!--x-->'\"&amp;<b>",
        "/srv/app/app/cache.py": "/srv/app/app/</SCRIPT >\u2028\u2029\x1b[2J.py",
        "remember": "<img src=x onerror=alert(2)>",
    }

    def test_names_stay_in_the_data_block(self):
        with gzip.open(AFTER, "rt") as f:
            doc = json.load(f)
        doc["strings"] = [self.NAMES.get(s, s) for s in doc["strings"]]
        evil = self.path("evil.snap")
        with gzip.open(evil, "wt") as f:
            json.dump(doc, f)
        html = page("diff", "--format=html", BEFORE, evil)
        plain = page("diff", "--format=html", BEFORE, AFTER)
        block = BLOCK.search(html)
        self.assertNotIn("<", block.group(1))
        self.assertNotIn("\u2028", html)
        self.assertNotIn("\x1b", html)
        # Outside the data block the page is the same as any other report's.
        self.assertEqual(html[:block.start(1)], plain[:BLOCK.search(plain).start(1)])
        self.assertEqual(html[block.end(1):], plain[BLOCK.search(plain).end(1):])
        got = embedded(html)
        names = {r["name"] for r in nodes(got)} | {t["name"] for t in got["types"]}
        self.assertIn(self.NAMES["login"], names)
        self.assertIn(self.NAMES["remember"], names)
        self.assertIn(self.NAMES["app.session.Session"], names)
        files = {r["file"] for r in nodes(got)}
        self.assertTrue(any("</SCRIPT >" in f for f in files), files)


if __name__ == "__main__":
    harness.main()
