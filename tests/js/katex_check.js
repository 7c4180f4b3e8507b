// Render every math block of the given Markdown files with KaTeX in strict mode.
// Prints one JSON object: {"blocks": N, "errors": [{"file", "tex", "message"}]}.
const katex = require("katex");
const fs = require("fs");

const DISPLAY = /^\$\$\n([\s\S]*?)\n\$\$$/gm;
const FENCE = /^```[\s\S]*?^```/gm;
const INLINE = /(?<![\\$])\$([^$\n]+?)\$/g;

const result = { blocks: 0, errors: [] };
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, "utf8");
  const display = [...text.matchAll(DISPLAY)].map((m) => [m[1], true]);
  const rest = text.replace(DISPLAY, "").replace(FENCE, "");
  const inline = [...rest.matchAll(INLINE)].map((m) => [m[1], false]);
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
