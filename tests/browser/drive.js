#!/usr/bin/env node
/*
 * Opens leakdiff's HTML reports in headless Chromium (the system's, through
 * puppeteer-core: no browser is downloaded) and reports what a person would
 * see, as one JSON document on stdout; test_browser.py and bench/run judge
 * it. One browser for all the pages.
 *
 *   drive.js SPEC.json
 *
 * SPEC is {"chromium": PATH, "pages": [{"name", "path", "texts": [...],
 * "search": TERM, "click": FUNCTION, "width": PX}]}. For each page it
 * records: console errors and uncaught exceptions, dialogs opened, the
 * time until the page said it was ready, which texts are on it, the red
 * pixels of the flame graph in a screenshot, what searching for TERM
 * highlights, whether clicking the frame named FUNCTION zooms into it and
 * Escape zooms back, the bars of the tables' trend charts, and the elements
 * the page has (to find injected ones).
 */
"use strict";
const fs = require("fs");
const path = require("path");

const modules = path.join(__dirname, "..", "..", "formats", "html", "node_modules");
const puppeteer = require(path.join(modules, "puppeteer-core"));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function countRed(page, png) {
  const b64 = png.toString("base64");
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let red = 0, blue = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > 180 && d[i + 1] < 120 && d[i + 2] < 120) red++;
      if (d[i + 2] > 180 && d[i] < 120 && d[i + 1] < 150) blue++;
    }
    return { red, blue, pixels: d.length / 4 };
  }, b64);
}

/* The rendered width of the frame called name, largest first; 0 when none. */
function frameWidth(page, name) {
  return page.evaluate((name) => {
    let w = 0;
    document.querySelectorAll("#chart g.frame").forEach((g) => {
      if (g.getAttribute("name") === name) w = Math.max(w, g.querySelector("rect").getBoundingClientRect().width);
    });
    return w;
  }, name);
}

async function visit(browser, spec) {
  const out = { name: spec.name, errors: [], dialogs: 0 };
  const page = await browser.newPage();
  await page.setViewport({ width: spec.width || 1200, height: 900 });
  page.on("console", (m) => { if (m.type() === "error") out.errors.push("console: " + m.text()); });
  page.on("pageerror", (e) => out.errors.push("exception: " + e.message));
  page.on("requestfailed", (r) => out.errors.push("request failed: " + r.url()));
  page.on("request", (r) => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) out.errors.push("fetched: " + r.url()); });
  page.on("dialog", async (d) => { out.dialogs++; await d.dismiss(); });
  const t0 = Date.now();
  await page.goto("file://" + path.resolve(spec.path), { waitUntil: "load", timeout: 60000 });
  try {
    await page.waitForFunction(() => document.documentElement.getAttribute("data-ready") === "1", { timeout: 30000 });
  } catch (e) {
    out.errors.push("never ready: " + e.message);
    await page.close();
    return out;
  }
  out.ready_ms = Date.now() - t0;
  await sleep(300); /* let the first frame paint */
  out.text_found = {};
  const body = await page.evaluate(() => document.body.innerText);
  for (const t of spec.texts || []) out.text_found[t] = body.includes(t);
  out.elements = await page.evaluate(() => ({
    scripts: document.querySelectorAll("script").length,
    images: document.querySelectorAll("img, iframe, object, embed").length,
    frames: document.querySelectorAll("#chart g.frame").length,
    focusable_frames: document.querySelectorAll("#chart g.frame[tabindex='0']").length,
    drawn_frames: [...document.querySelectorAll("#chart g.frame rect")].filter((r) => r.getBoundingClientRect().width >= 1).length,
    width_mode: (document.getElementById("width-mode") || {}).value,
    chart_height: document.querySelector("#chart svg") ? document.querySelector("#chart svg").getBoundingClientRect().height : 0,
    scroll_width: document.documentElement.scrollWidth,
    client_width: document.documentElement.clientWidth,
  }));
  /* Each trend chart of the tables: its label, and where every bar sits within it. */
  out.trends = await page.evaluate(() => [...document.querySelectorAll(".trend[role=img]")].map((c) => {
    const box = c.getBoundingClientRect();
    return {
      label: c.getAttribute("aria-label"),
      visible: box.width > 0 && box.height > 0,
      height: box.height,
      bars: [...c.children].map((b) => {
        const r = b.getBoundingClientRect();
        return { cls: b.className, step: b.hasAttribute("data-step") ? Number(b.getAttribute("data-step")) : null,
                 top: r.top - box.top, height: r.height, width: r.width };
      }),
    };
  }));
  const chart = await page.$("#chart");
  if (chart) {
    const png = await chart.screenshot({ type: "png" });
    out.colours = await countRed(page, png);
  }
  if (spec.search) {
    await page.type("#search", spec.search);
    await sleep(400);
    out.search = await page.evaluate((term) => {
      const lit = [];
      document.querySelectorAll("#chart g.frame").forEach((g) => {
        if (g.querySelector("rect").getAttribute("fill") === "#b000d6") lit.push(g.getAttribute("name"));
      });
      return { highlighted: lit, status: document.getElementById("search-result").textContent };
    }, spec.search);
    await page.evaluate(() => { const s = document.getElementById("search"); s.value = ""; s.dispatchEvent(new Event("input")); });
    await sleep(300);
  }
  if (spec.click) {
    const before = await frameWidth(page, spec.click);
    const total = await page.evaluate(() => document.querySelector("#chart svg").getBoundingClientRect().width);
    await page.evaluate((name) => {
      const g = [...document.querySelectorAll("#chart g.frame")].find((x) => x.getAttribute("name") === name);
      if (g) g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    }, spec.click);
    await sleep(700);
    const zoomed = await frameWidth(page, spec.click);
    const faded = await page.evaluate(() => document.querySelectorAll("#chart g.frame.fade").length);
    /* The keyboard: Escape resets, Enter on a focused frame zooms again. */
    await page.keyboard.press("Escape");
    await sleep(700);
    const reset = await frameWidth(page, spec.click);
    await page.evaluate((name) => {
      const g = [...document.querySelectorAll("#chart g.frame")].find((x) => x.getAttribute("name") === name);
      if (g) g.focus();
    }, spec.click);
    await page.keyboard.press("Enter");
    await sleep(700);
    const keyed = await frameWidth(page, spec.click);
    out.zoom = { before, zoomed, reset, keyed, total, faded };
    /* The icicle toggle puts the root at the top instead of the bottom. */
    await page.keyboard.press("Escape");
    const rootY = () => page.evaluate(() => {
      const g = [...document.querySelectorAll("#chart g.frame")].find((x) => x.getAttribute("name") === "all");
      return g ? g.getBoundingClientRect().top - document.querySelector("#chart svg").getBoundingClientRect().top : -1;
    });
    const flameY = await rootY();
    await page.click("#icicle");
    await sleep(700);
    out.icicle = { flame: flameY, icicle: await rootY() };
  }
  await page.close();
  return out;
}

(async () => {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const browser = await puppeteer.launch({
    executablePath: spec.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  const results = [];
  try {
    for (const p of spec.pages) results.push(await visit(browser, p));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(results) + "\n");
})().catch((e) => {
  process.stderr.write("drive.js: " + (e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
