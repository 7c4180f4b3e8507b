// Open every page of a built site in one headless Chromium and report what a reader sees.
// Usage: node site_check.js PAGES.json   (a JSON list of {"name", "url"[, "root"]}; root is a CSS
// selector that limits formulas, tables and Mermaid to the document's own content, default body).
// Prints one JSON list, one object per page: {name, url, formulas, errors, leftover, tables, h1,
// title, mermaid, mermaid_errors, console}. Only 127.0.0.1/localhost is reachable: any other request
// is aborted and reported in console, so a page that needs the network fails the check.
// SITE_CHECK_JOBS pages load at once (default 3); a page is read when its counts have been stable
// for SITE_CHECK_QUIET ms (default 250) with no Mermaid block left pending, or after SITE_CHECK_MAX ms.
const fs = require("fs");
const { chromium } = require("playwright-core");

const JOBS = Number(process.env.SITE_CHECK_JOBS || 3);
const QUIET = Number(process.env.SITE_CHECK_QUIET || 250);
const MAX = Number(process.env.SITE_CHECK_MAX || 15000);
const LOCAL = /^(https?:\/\/(127\.0\.0\.1|localhost)[:/]|data:|blob:|about:)/;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// Runs in every page before its own scripts: shadow roots (Material draws Mermaid into a closed one)
// are created open, so the report can look inside them; nothing else about the page changes.
function openShadows() {
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    return attach.call(this, { ...init, mode: "open" });
  };
}

// Runs in the page: the counts that must be stable before the page is read.
function progress(root) {
  const scope = document.querySelector(root) || document.body;
  const all = (sel) => scope.querySelectorAll(sel).length;
  const mermaid = [...document.querySelectorAll(".mermaid")];
  const drawn = (el) => el.querySelector("svg") || (el.shadowRoot && el.shadowRoot.querySelector("svg"));
  // Blocks Mermaid has yet to draw (none pending when the page loads no Mermaid: nothing would draw them).
  const pending = typeof window.mermaid === "undefined" || window.mermaid instanceof Element ? 0
    : mermaid.filter((el) => !drawn(el)).length;
  const text = document.body ? document.body.textContent.length : 0;
  return { key: [all(".katex"), all("mjx-container"), all(".katex-error"), all("mjx-merror"),
    mermaid.filter(drawn).length, text].join(","), pending, ready: document.readyState === "complete" };
}

// Runs in the page once it has settled: the report.
function report(root) {
  const scope = document.querySelector(root) || document.body;
  const visible = (el) => !el.checkVisibility || el.checkVisibility({ checkVisibilityCSS: true });
  const inside = (el, sel) => el && el.closest(sel);
  // Formulas: KaTeX's outermost .katex, MathJax's mjx-container (never nested).
  const katex = [...scope.querySelectorAll(".katex")].filter((el) => !inside(el.parentElement, ".katex"));
  const formulas = katex.length + scope.querySelectorAll("mjx-container").length;
  // The TeX of each MathJax formula, when the page's MathJax keeps its list.
  const texOf = new Map();
  try {
    for (const item of MathJax.startup.document.math) texOf.set(item.typesetRoot, item.math);
  } catch (e) { /* no MathJax on this page */ }
  const errors = [];
  for (const el of document.querySelectorAll(".katex-error")) {
    errors.push({ tex: el.textContent.slice(0, 300), message: el.getAttribute("title") || "" });
  }
  const seen = new Set();
  for (const el of document.querySelectorAll("mjx-merror, [data-mjx-error], [data-mml-node=merror]")) {
    const box = el.closest("mjx-container") || el;
    if (seen.has(box)) continue;
    seen.add(box);
    const message = el.getAttribute("data-mjx-error") || el.getAttribute("title") || el.textContent;
    errors.push({ tex: (texOf.get(box) || box.textContent).slice(0, 300), message: (message || "").slice(0, 300) });
  }
  // Text a renderer left unread: a math delimiter outside code and outside rendered math.
  const leftover = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const skip = "code, pre, script, style, noscript, textarea, template, .katex, mjx-container, svg, .mermaid";
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(skip) || !visible(el)) continue;
    if (/\$|\\\(|\\\[/.test(node.nodeValue)) leftover.push(node.nodeValue.trim().slice(0, 200));
  }
  // Tables: the cells of each row (a colspan counts as its span).
  const tables = [...scope.querySelectorAll("table")].map((t) => [...t.rows].map(
    (row) => [...row.cells].reduce((n, cell) => n + (cell.colSpan || 1), 0)));
  const h1 = [...document.body.querySelectorAll("h1")].filter(visible).map((el) => el.innerText.trim());
  // Mermaid: SVGs drawn in the content (in light DOM or a shadow root) and the errors it shows.
  const blocks = [...scope.querySelectorAll(".mermaid")];
  let mermaid = 0;
  const mermaidErrors = [];
  for (const el of blocks) {
    const svg = el.querySelector("svg") || (el.shadowRoot && el.shadowRoot.querySelector("svg"));
    if (!svg) continue;
    const text = svg.textContent || "";
    if (svg.getAttribute("aria-roledescription") === "error" || /Syntax error in text/.test(text)) {
      mermaidErrors.push(text.trim().slice(0, 200));
    } else {
      mermaid += 1;
    }
  }
  // Mermaid appends an error SVG to the body when a diagram fails to parse.
  for (const el of document.querySelectorAll("body > div[id^=d] svg[aria-roledescription=error]")) {
    mermaidErrors.push(el.textContent.trim().slice(0, 200));
  }
  return { formulas, errors, leftover, tables, h1, title: document.title, mermaid, mermaid_errors: mermaidErrors };
}

async function check(context, page) {
  const tab = await context.newPage();
  const consoleErrors = [];
  tab.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text().slice(0, 500)); });
  tab.on("pageerror", (err) => consoleErrors.push(`pageerror: ${String(err.message || err).slice(0, 500)}`));
  tab.on("requestfailed", (req) => {
    if (!LOCAL.test(req.url())) return; // reported when it was made
    consoleErrors.push(`requestfailed: ${req.url()} ${req.failure() ? req.failure().errorText : ""}`);
  });
  tab.on("request", (req) => {
    if (!LOCAL.test(req.url())) consoleErrors.push(`blocked network request: ${req.url()}`);
  });
  tab.on("response", (res) => { if (res.status() >= 400) consoleErrors.push(`http ${res.status()}: ${res.url()}`); });
  const root = page.root || "body";
  const start = Date.now();
  let settled = false;
  try {
    await tab.goto(page.url, { waitUntil: "load", timeout: MAX });
    // A page that says when it has rendered (window.pageRendered, a promise) is awaited first.
    const told = await tab.evaluate(() => Promise.resolve(window.pageRendered).then((done) => done !== undefined))
      .catch((err) => consoleErrors.push(`pageRendered: ${err.message}`));
    const quiet = told === true ? 100 : QUIET;
    const loaded = Date.now();
    let last = null;
    let since = Date.now();
    while (Date.now() - start < MAX) {
      const now = await tab.evaluate(progress, root);
      if (now.key !== last) {
        last = now.key;
        since = Date.now();
      } else if (now.ready && now.pending === 0 && Date.now() - since >= quiet) {
        settled = true;
        break;
      }
      await tab.waitForTimeout(100);
    }
    const result = await tab.evaluate(report, root);
    if (!settled) consoleErrors.push(`site_check: the page did not settle within ${MAX} ms`);
    return { name: page.name, url: page.url, ...result, console: consoleErrors, ms: [loaded - start, Date.now() - start] };
  } catch (err) {
    consoleErrors.push(`site_check: ${String(err.message || err).slice(0, 500)}`);
    return { name: page.name, url: page.url, formulas: 0, errors: [], leftover: [], tables: [], h1: [], title: "",
      mermaid: 0, mermaid_errors: [], console: consoleErrors };
  } finally {
    await tab.close();
  }
}

async function main() {
  const pages = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS });
  try {
    const context = await browser.newContext();
    await context.addInitScript(openShadows);
    await context.route("**/*", (route) => {
      if (LOCAL.test(route.request().url())) return route.continue();
      return route.abort("blockedbyclient");
    });
    const results = new Array(pages.length);
    let next = 0;
    const worker = async () => {
      while (next < pages.length) {
        const k = next++;
        results[k] = await check(context, pages[k]);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, JOBS) }, worker));
    console.log(JSON.stringify(results));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
