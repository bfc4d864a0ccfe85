#!/usr/bin/env python3
"""The HTML report in a real browser (issue 14): headless Chromium, driven
by drive.js through puppeteer-core, opens the reports of programs recorded
here (a Python program with three snapshots and a limit exceeded, a native
one, a Python one whose names carry markup and control characters) and
this checks what a person would see: no console errors, the leaking
function and type on the page, growth drawn in red, the search box
highlighting the leaking frame, a click (and the keyboard) zooming, the
icicle toggle turning the graph over.
Skips, with the reason, where Chromium, Node.js or puppeteer-core is missing
(scripts/setup installs all three)."""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from harness import PYTHON, TempDirCase, leakdiff  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("LEAKDIFF_SOURCE", os.path.join(HERE, "..", ".."))
STACKS = os.environ.get("NATIVE_PROG_STACKS")
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and os.path.exists(p)), None)
NODE = shutil.which("node")
PUPPETEER = os.path.join(SOURCE, "formats", "html", "node_modules", "puppeteer-core", "package.json")

# Two paths grow: login (Session objects in a module list) and remember (strings in a dict),
# so that the leaking frame is part of the graph's width, not all of it.
LEAKY = textwrap.dedent("""\
    import leakdiff
    class Session:
        def __init__(self, user):
            self.user = user
            self.items = list(range(8))
    registry = []
    cache = {}
    def login(n):
        for i in range(n):
            registry.append(Session(i))
    def remember(n):
        for i in range(n):
            cache[len(cache)] = "value %d" % i * 8
    def step(n):
        login(n)
        remember(n)
    step(200)
    leakdiff.snapshot("one")
    step(1000)
    leakdiff.snapshot("two")
    step(1000)
    """)

# Names made to break a page that inserts them as markup: a type and a function.
TYPE_NAME = '<script>alert("type")</script>\x1b[31m'
FUNC_NAME = "<img src=x onerror=alert(1)>'\""
HOSTILE = textwrap.dedent("""\
    import leakdiff, sys
    Evil = type(sys.argv[1], (), {})
    kept = []
    def grow(n):
        for _ in range(n):
            kept.append(Evil())
    code = grow.__code__
    names = {"co_name": sys.argv[2]}
    if hasattr(code, "co_qualname"):
        names["co_qualname"] = sys.argv[2]
    grow.__code__ = code.replace(**names)
    grow(100)
    leakdiff.snapshot("before")
    grow(900)
    """)


def missing():
    if not CHROMIUM:
        return "Chromium is not installed (scripts/setup installs Debian's chromium)"
    if not NODE:
        return "Node.js is not installed (scripts/setup installs it)"
    if not os.path.exists(PUPPETEER):
        return "puppeteer-core is not installed in formats/html/node_modules (run scripts/setup)"
    return None


@unittest.skipIf(missing(), missing())
class Browser(TempDirCase):
    @classmethod
    def setUpClass(cls):
        cls.cls_tmp = tempfile.mkdtemp(prefix="leakdiff-browser-")
        cls.pages, cls.results, cls.codes = [], {}, {}
        tmp = cls.cls_tmp

        def record(out, *cmd):
            r = leakdiff("record", "-q", "-o", os.path.join(tmp, out), "--", *cmd, cwd=tmp)
            if r.returncode != 0:
                raise AssertionError("recording %s failed: %s" % (cmd, r.stderr))

        def report(name, *args, texts=(), search=None, click=None, width=None):
            path = os.path.join(tmp, name + ".html")
            r = leakdiff(*args, cwd=tmp)
            cls.codes[name] = (r.returncode, r.stderr)
            with open(path, "w") as f:
                f.write(r.stdout)
            cls.pages.append({"name": name, "path": path, "texts": list(texts), "search": search,
                              "click": click, "width": width})

        prog = os.path.join(tmp, "leaky.py")
        with open(prog, "w") as f:
            f.write(LEAKY)
        record("py.snap", PYTHON, prog)
        one, two, last = (os.path.join(tmp, n) for n in ("py.1.snap", "py.2.snap", "py.snap"))
        texts = ["__main__.Session", "login", "Likely leak"]
        report("python-limits", "diff", "--format=html", "--max-total-growth=1KiB", one, last,
               texts=texts + ["Limits exceeded"], search="login", click="login")
        report("python-trend", "diff", "--format=html", one, two, last,
               texts=texts + ["grew in 2 of 2"], search="login", click="login")
        report("python-narrow", "diff", "--format=html", one, last, texts=texts, width=420)
        # Up by 1,000 steps of the program, down by 1,000, up by 1,000: bars of both
        # directions and two heights, in the narrow window.
        report("python-trend-wobble", "diff", "--format=html", one, last, two, last,
               texts=texts + ["grew in 2 of 3"], width=420)
        cls.trend_json = {name: json.loads(leakdiff("diff", "--format=json", *snaps, cwd=tmp).stdout)
                          for name, snaps in (("python-trend", (one, two, last)),
                                              ("python-trend-wobble", (one, last, two, last)))}
        # Nothing grew from the last snapshot back to the first: the graph is drawn by the later size.
        report("python-reversed", "diff", "--format=html", last, one, texts=["__main__.Session", "login"])
        report("python-show", "show", "--format=html", last, texts=["__main__.Session", "login"])
        # A snapshot as an attached agent and --native write it (meta.attached, the native totals):
        # the header says since when sites were traced, and how much of the heap is native.
        with gzip.open(last, "rt", encoding="utf-8") as f:
            doc = json.load(f)
        doc["meta"]["attached"] = 1796647654.5
        doc["totals"]["native_bytes"], doc["totals"]["native_blocks"] = 123456, 78
        stamped = os.path.join(tmp, "stamped.snap")
        with gzip.open(stamped, "wt", encoding="utf-8") as f:
            json.dump(doc, f)
        report("python-attached", "show", "--format=html", stamped,
               texts=["Attached", "2026-12-07T12:47:34Z, tracing since then", "of it native", "121 KiB in 78 blocks"])
        if STACKS:
            record("a.snap", STACKS, "80")
            record("b.snap", STACKS, "800")
            report("native", "diff", "--format=html", "--max-site-growth=1KiB", os.path.join(tmp, "a.snap"),
                   os.path.join(tmp, "b.snap"), texts=["leaf", "Limits exceeded"], search="leaf", click="via_red")
        evil = os.path.join(tmp, "evil.py")
        with open(evil, "w") as f:
            f.write(HOSTILE)
        record("evil.snap", PYTHON, evil, TYPE_NAME, FUNC_NAME)
        report("hostile", "diff", "--format=html", os.path.join(tmp, "evil.1.snap"), os.path.join(tmp, "evil.snap"),
               texts=["__main__." + '<script>alert("type")</script>', FUNC_NAME])

        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"chromium": CHROMIUM, "pages": cls.pages}, f)
        r = subprocess.run([NODE, os.path.join(HERE, "drive.js"), spec], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("drive.js failed: " + r.stderr[-3000:])
        cls.results = {p["name"]: p for p in json.loads(r.stdout)}
        if os.environ.get("LEAKDIFF_BROWSER_KEEP"):
            # What the browser saw, and the reports, kept for a person to look at.
            with open(os.environ["LEAKDIFF_BROWSER_KEEP"], "w") as f:
                json.dump(cls.results, f, indent=1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.cls_tmp, ignore_errors=True)

    def page(self, name):
        if name not in self.results:
            self.skipTest("no %s report (NATIVE_PROG_STACKS unset)" % name)
        return self.results[name]

    def test_exit_statuses(self):
        # Limits apply to the HTML report as to the text one.
        self.assertEqual(self.codes["python-limits"][0], 1, self.codes["python-limits"][1])
        self.assertEqual(self.codes["python-trend"][0], 0, self.codes["python-trend"][1])
        self.assertEqual(self.codes["hostile"][0], 0, self.codes["hostile"][1])
        if "native" in self.codes:
            self.assertEqual(self.codes["native"][0], 1, self.codes["native"][1])

    def test_no_console_errors_and_nothing_fetched(self):
        for name, p in self.results.items():
            with self.subTest(page=name):
                self.assertEqual(p["errors"], [])
                self.assertEqual(p["dialogs"], 0)
                self.assertEqual(p["elements"]["images"], 0)
                self.assertEqual(p["elements"]["scripts"], 3, "the data block and the two bundled scripts")

    def test_leaking_function_and_type_are_on_the_page(self):
        for name, p in self.results.items():
            with self.subTest(page=name):
                self.assertEqual([t for t, ok in p["text_found"].items() if not ok], [])

    def test_growth_is_red(self):
        for name in ("python-limits", "python-trend", "native", "hostile"):
            if name not in self.results:
                continue
            with self.subTest(page=name):
                c = self.results[name]["colours"]
                self.assertGreater(c["red"], 2000, c)
                self.assertGreater(c["red"], c["blue"], c)

    def test_search_highlights_the_leaking_frame(self):
        for name, term in (("python-limits", "login"), ("python-trend", "login"), ("native", "leaf")):
            if name not in self.results:
                continue
            with self.subTest(page=name):
                s = self.results[name]["search"]
                self.assertIn(term, s["highlighted"])
                self.assertTrue(all(term in h for h in s["highlighted"]), s)
                self.assertRegex(s["status"], r"^\d+ matching frames?, \d+\.\d% of the growth")

    def test_click_and_keyboard_zoom(self):
        for name in ("python-limits", "python-trend", "native"):
            if name not in self.results:
                continue
            with self.subTest(page=name):
                z = self.results[name]["zoom"]
                self.assertGreater(z["before"], 0, z)
                self.assertLess(z["before"], z["total"] * 0.9, z)
                self.assertGreater(z["zoomed"], z["total"] * 0.95, "the clicked frame fills the width: %s" % z)
                self.assertGreater(z["faded"], 0, "its callers fade")
                self.assertAlmostEqual(z["reset"], z["before"], delta=2, msg="Escape resets: %s" % z)
                self.assertGreater(z["keyed"], z["total"] * 0.95, "Enter on a focused frame zooms: %s" % z)
                self.assertGreater(self.results[name]["elements"]["focusable_frames"], 0)
                ice = self.results[name]["icicle"]
                self.assertEqual(ice["icicle"], 0, "the icicle has its root on top: %s" % ice)
                self.assertGreater(ice["flame"], ice["icicle"], ice)

    def test_width_follows_growth_or_later_size(self):
        grew = self.page("python-limits")["elements"]
        self.assertEqual(grew["width_mode"], "growth")
        back = self.page("python-reversed")
        self.assertEqual(back["elements"]["width_mode"], "after", "a diff where nothing grew is drawn by later size")
        self.assertGreater(back["elements"]["drawn_frames"], 3, back["elements"])
        self.assertGreater(back["colours"]["blue"], 2000, back["colours"])
        self.assertGreater(back["colours"]["blue"], back["colours"]["red"], back["colours"])

    def test_graph_is_as_tall_as_its_frames(self):
        # One 18 px row per level drawn, plus one: no blank band of zero-width frames above it.
        for name in ("python-limits", "python-trend", "native"):
            if name not in self.results:
                continue
            with self.subTest(page=name):
                e = self.results[name]["elements"]
                self.assertEqual(e["chart_height"] % 18, 0, e)
                self.assertLessEqual(e["chart_height"], 18 * (e["drawn_frames"] + 1), e)

    def test_narrow_window(self):
        for name in ("python-narrow", "python-trend-wobble"):
            with self.subTest(page=name):
                e = self.page(name)["elements"]
                self.assertLessEqual(e["scroll_width"], e["client_width"], "no sideways scrolling at 420 px")

    def test_trend_bars_follow_the_steps(self):
        """One bar per step, its height the step's byte change against the
        row's largest (16 px when the row went one way, 9 px each side of
        the baseline when both), red up, blue down, a 1 px mark for none."""
        for name in ("python-trend", "python-trend-wobble"):
            with self.subTest(page=name):
                doc = self.trend_json[name]
                want = sorted(r["steps"] for r in doc["types"] + doc["sites"])
                trends = self.page(name)["trends"]
                self.assertEqual(sorted([b["step"] for b in t["bars"]] for t in trends), want)
                for t in trends:
                    steps = [b["step"] for b in t["bars"]]
                    self.assertTrue(t["visible"], t)
                    # The text alternative lists every step's change, signed.
                    label = t["label"].split(": ", 1)
                    self.assertEqual(label[0], "change per step", t)
                    parts = label[1].split(", ")
                    self.assertEqual(len(parts), len(steps), t)
                    for part, step in zip(parts, steps):
                        self.assertTrue(part.startswith("+") if step > 0 else part.startswith("-") if step < 0
                                        else part == "0 B", t)
                    big = max(abs(s) for s in steps)
                    up, down = any(s > 0 for s in steps), any(s < 0 for s in steps)
                    side = 9 if up and down else 16
                    base = side if up else 0
                    self.assertEqual(t["height"], base + (side if down else 0) or 1, t)
                    for b in t["bars"]:
                        s = b["step"]
                        if s == 0:
                            self.assertEqual((b["cls"], b["height"]), ("flat", 1), t)
                            continue
                        self.assertEqual(b["cls"], "up" if s > 0 else "down", t)
                        self.assertAlmostEqual(b["height"], max(2, abs(s) / big * side), delta=0.51, msg=t)
                        # Growth stands on the baseline, shrinkage hangs from it.
                        self.assertEqual(b["top"] + b["height"] if s > 0 else b["top"], base, t)
        # The program leaks 1,000 Sessions in each step of the straight run: two
        # equal full bars. In the wobbling run it gains 2,000, loses 1,000 and gains
        # 1,000 again: a full bar up, then half-height ones down and up. (Its sites
        # differ from one call of step() to the next, so its type is the row to watch.)
        for name, shape, heights in (("python-trend", ("up", "up"), (16, 16)),
                                     ("python-trend-wobble", ("up", "down", "up"), (9, 4.5, 4.5))):
            with self.subTest(page=name, type="__main__.Session"):
                steps = [r["steps"] for r in self.trend_json[name]["types"] if r["name"] == "__main__.Session"]
                self.assertEqual(len(steps), 1, steps)
                t = [t for t in self.page(name)["trends"] if [b["step"] for b in t["bars"]] == steps[0]][0]
                self.assertEqual(tuple(b["cls"] for b in t["bars"]), shape, t)
                for b, h in zip(t["bars"], heights):
                    self.assertAlmostEqual(b["height"], h, delta=1, msg=t)


if __name__ == "__main__":
    harness.main()
