// What github.com does in the browser with the HTML its parser (cmark-gfm) made from a Markdown file,
// emulated for tests/test_site_github.py (github.com's own pipeline cannot run offline; its parser can):
// - ```math (cmark-gfm: <pre lang="math">) is a display formula, $`…`$ (cmark-gfm: $<code>…</code>$) an
//   inline one; every other code span and block stays code;
// - MathJax 3 typesets those and any $…$ / $$…$$ left in the text (code and pre skipped), with undefined
//   macros as errors rather than red text;
// - ```mermaid (<pre lang="mermaid">) is drawn by Mermaid.
// Load this first, then MathJax and Mermaid with defer: it configures MathJax, and its DOMContentLoaded
// handler runs after both.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"]],
    displayMath: [["$$", "$$"]],
    packages: { "[-]": ["noundefined"] },
  },
  startup: { typeset: false },
  options: { enableMenu: false, enableAssistiveMml: false },
};

document.addEventListener("DOMContentLoaded", () => {
  const body = document.querySelector(".markdown-body");
  const math = (tex, display) => {
    const el = document.createElement("math-renderer");
    el.className = display ? "js-display-math" : "js-inline-math";
    el.style.display = display ? "block" : "inline";
    el.textContent = display ? `$$${tex}$$` : `$${tex}$`;
    return el;
  };
  for (const pre of body.querySelectorAll('pre[lang="math"]')) pre.replaceWith(math(pre.textContent, true));
  for (const code of body.querySelectorAll("code")) {
    const before = code.previousSibling;
    const after = code.nextSibling;
    if (code.closest("pre") || !before || !after || before.nodeType !== Node.TEXT_NODE
      || after.nodeType !== Node.TEXT_NODE || !before.nodeValue.endsWith("$") || !after.nodeValue.startsWith("$")) continue;
    before.nodeValue = before.nodeValue.slice(0, -1);
    after.nodeValue = after.nodeValue.slice(1);
    code.replaceWith(math(code.textContent, false));
  }
  const graphs = [];
  for (const pre of body.querySelectorAll('pre[lang="mermaid"]')) {
    const div = document.createElement("div");
    div.className = "mermaid";
    div.textContent = pre.textContent;
    pre.replaceWith(div);
    graphs.push(div);
  }
  mermaid.initialize({ startOnLoad: false });
  window.pageRendered = Promise.all([
    MathJax.startup.promise.then(() => MathJax.typesetPromise([body])),
    graphs.length ? mermaid.run({ nodes: graphs }) : null,
  ]);
});
