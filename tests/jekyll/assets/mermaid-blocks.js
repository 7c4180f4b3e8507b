// kramdown writes a ```mermaid fence as a highlighted code block: give Mermaid its text to draw instead.
document.addEventListener("DOMContentLoaded", () => {
  for (const block of document.querySelectorAll("div.language-mermaid, pre > code.language-mermaid")) {
    const graph = document.createElement("pre");
    graph.className = "mermaid";
    graph.textContent = block.textContent;
    (block.closest("div.language-mermaid") || block.parentElement).replaceWith(graph);
  }
  mermaid.initialize({ startOnLoad: false });
  mermaid.run();
});
