// Render every math block of the given Markdown files with KaTeX in strict mode.
// Usage: node katex_check.js [--flavor portable|github|mkdocs|hugo|jekyll] FILES
// (the delimiters of generator/render/flavor.py; default portable).
// Prints one JSON object: {"blocks": N, "files": {file: N}, "errors": [{"file", "tex", "message"}]}.
const katex = require("katex");
const fs = require("fs");

const FENCE = /^```[\s\S]*?^```/gm;
const DOLLARS = { display: /^\$\$\n([\s\S]*?)\n\$\$$/gm, inline: /(?<![\\$])\$([^$\n]+?)\$/g };
const FLAVORS = {
  portable: DOLLARS,
  mkdocs: DOLLARS,
  github: { display: /^```math\n([\s\S]*?)\n```$/gm, inline: /\$`([^`\n]+?)`\$/g },
  hugo: { display: /^\\\[\n([\s\S]*?)\n\\\]$/gm, inline: /\\\(([^\n]+?)\\\)/g },
  jekyll: { display: /^\$\$\n([\s\S]*?)\n\$\$$/gm, inline: /(?<![\\$])\$\$([^$\n]+?)\$\$/g },
};

let args = process.argv.slice(2);
let flavor = "portable";
if (args[0] === "--flavor") {
  flavor = args[1];
  args = args.slice(2);
}
const syntax = FLAVORS[flavor];
if (!syntax) {
  console.error(`unknown flavor ${flavor} (allowed: ${Object.keys(FLAVORS).join(", ")})`);
  process.exit(2);
}

const result = { blocks: 0, files: {}, errors: [] };
for (const file of args) {
  const text = fs.readFileSync(file, "utf8");
  const display = [...text.matchAll(syntax.display)].map((m) => [m[1], true]);
  const rest = text.replace(syntax.display, "").replace(FENCE, "");
  const inline = [...rest.matchAll(syntax.inline)].map((m) => [m[1], false]);
  result.files[file] = display.length + inline.length;
  for (const [tex, displayMode] of display.concat(inline)) {
    result.blocks += 1;
    try {
      katex.renderToString(tex, { displayMode, strict: "error", throwOnError: true });
    } catch (e) {
      result.errors.push({ file, tex: tex.slice(0, 200), message: e.message });
    }
  }
}
console.log(JSON.stringify(result));
