// Let a page's math renderers scan an HTML page as a reader's site does, and report what they made.
// Usage: node delimiters_check.js PAGE.html...
// KaTeX auto-render (in jsdom) and MathJax 3's TeX input (mathjax-full, jsdom adaptor) each scan the
// page's text with their default delimiters plus $…$, with every extension on and KaTeX's trust on:
// the worst settings a site may choose. For each renderer, for the elements that hold spec text
// (h1 and the paragraph after it) and for the whole page, prints the number of formulas typeset,
// the links and the style attributes they made, and the text the reader sees.
// Prints a JSON list, one {"katex": {...}, "mathjax": {...}} per page.
const fs = require("fs");
const { JSDOM } = require("jsdom");

const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { CHTML } = require("mathjax-full/js/output/chtml.js");
const { jsdomAdaptor } = require("mathjax-full/js/adaptors/jsdomAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");
const renderMathInElement = require("katex/contrib/auto-render");

RegisterHTMLHandler(jsdomAdaptor(JSDOM));
const SPEC = "h1, h1 + p";

function report(document, selector) {
  const spec = [...document.querySelectorAll(SPEC)];
  const inSpec = (el) => spec.some((s) => s.contains(el));
  const math = [...document.querySelectorAll(selector)];
  const links = [...document.querySelectorAll("[href]")].filter(inSpec).map((a) => a.getAttribute("href"));
  const styles = math.filter(inSpec).flatMap((m) => [...m.querySelectorAll("[style]")])
    .map((e) => e.getAttribute("style")).filter((s) => /position|fixed/.test(s));
  return {
    page: math.length,
    spec: math.filter(inSpec).length,
    links,
    styles,
    text: spec.map((s) => s.textContent),
  };
}

function katexScan(page) {
  const dom = new JSDOM(page);
  global.window = dom.window;
  global.document = dom.window.document;
  global.Node = dom.window.Node;
  const delimiters = [
    { left: "$$", right: "$$", display: true },
    { left: "$", right: "$", display: false },
    { left: "\\(", right: "\\)", display: false },
    { left: "\\begin{equation}", right: "\\end{equation}", display: true },
    { left: "\\begin{align}", right: "\\end{align}", display: true },
    { left: "\\begin{alignat}", right: "\\end{alignat}", display: true },
    { left: "\\begin{gather}", right: "\\end{gather}", display: true },
    { left: "\\begin{CD}", right: "\\end{CD}", display: true },
    { left: "\\[", right: "\\]", display: true },
  ];
  renderMathInElement(document.body, { delimiters, trust: true, throwOnError: false, strict: "ignore" });
  return report(document, ".katex");
}

function mathjaxScan(page) {
  // Default delimiters (\( \), $$ $$, \[ \], environments, \$ escapes) plus $…$ inline.
  const tex = new TeX({ packages: AllPackages, inlineMath: [["$", "$"], ["\\(", "\\)"]] });
  const doc = mathjax.document(page, { InputJax: tex, OutputJax: new CHTML({ fontURL: "." }) });
  doc.render();
  return report(doc.document, "mjx-container");
}

const reports = process.argv.slice(2).map((file) => {
  const text = fs.readFileSync(file, "utf8");
  const page = /^\s*<!doctype/i.test(text) ? text : `<!doctype html>${text}`; // KaTeX refuses quirks mode
  return { katex: katexScan(page), mathjax: mathjaxScan(page) };
});
console.log(JSON.stringify(reports));
