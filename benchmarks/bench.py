"""Print the five figures of derive's performance targets, measured on this machine.

    python benchmarks/bench.py            (make bench runs it in the project's .venv)

Each figure is a ratio or a time with its target; the script exits 1 if one misses its target.
Times are wall-clock medians of a few runs, in-process for the derivation (imports excluded on
both sides) and as whole commands for builds (processes, imports included, as a user waits).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEAN_SPEC = """title: "mean(3(x + 2)^2) over {n} elements"
inputs:
  x:
    fill: 1
    shape: [{n}]
    requires_grad: true
steps:
  y: x + 2
  z: y * y * 3
  out: z.mean()
backward: out
"""


def median_time(fn, runs: int = 3) -> float:
    """Return the median wall-clock seconds of fn() over runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_spec(folder: Path, n: int) -> Path:
    path = folder / f"mean_{n}.yaml"
    path.write_text(MEAN_SPEC.format(n=n))
    return path


def derive_time(path: Path, runs: int = 3) -> float:
    """Seconds to load, derive and render a spec to Markdown and JSON, in-process."""
    from generator.pipeline.build import render_spec

    render_spec(path, ("md", "json"), None)  # warm: imports, caches
    return median_time(lambda: render_spec(path, ("md", "json"), None), runs)


def naive_time(n: int) -> float:
    """Seconds for sympy's Matrix.jacobian of mean(3(x + 2)^2) over n symbols (one run: it is slow)."""
    import sympy as sp

    xs = sp.symbols(f"x0:{n}", real=True)
    out = sp.Add(*(3 * (x + 2) ** 2 for x in xs)) / n
    start = time.perf_counter()
    sp.Matrix([out]).jacobian(xs)
    return time.perf_counter() - start


def command_time(args: list[str], runs: int = 5, env: dict | None = None) -> float:
    def run():
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    run()
    return median_time(run, runs)


def latexmk_alone(tex_files: list[Path]) -> float:
    """Seconds for latexmk alone on the same .tex files, one after another, as derive runs it."""
    from generator.render.pdf import PROGRAM

    start = time.perf_counter()
    for tex in tex_files:
        engine = PROGRAM.match(tex.read_text(encoding="utf-8")).group(1)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(tex, Path(tmp) / "doc.tex")
            subprocess.run(
                ["latexmk", "-norc", "-xelatex" if engine == "xelatex" else "-pdf", "-no-shell-escape",
                 "-halt-on-error", "-interaction=nonstopmode", "-quiet", "doc.tex"],
                cwd=tmp, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
    return time.perf_counter() - start


def main() -> int:
    derive = str(Path(sys.executable).parent / "derive")
    if not Path(derive).exists():
        derive = shutil.which("derive") or derive
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform(terse=True)}")
    results = []

    def figure(name: str, value: float, target: str, ok: bool, detail: str) -> None:
        results.append(ok)
        print(f"{'ok  ' if ok else 'MISS'} {name}: {value:.3g} (target {target}; {detail})")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        s300 = derive_time(write_spec(folder, 300))
        naive = naive_time(300)
        figure("1. naive sympy Matrix.jacobian / derive, 300 elements", naive / s300, ">= 20", naive / s300 >= 20,
               f"sympy {naive:.2f} s, derive {s300 * 1000:.0f} ms for Markdown and JSON")

        s100 = derive_time(write_spec(folder, 100))
        s10k = derive_time(write_spec(folder, 10_000))
        figure("2. derive time for 10^4 elements / for 10^2", s10k / s100, "<= 20", s10k / s100 <= 20,
               f"{s10k * 1000:.0f} ms / {s100 * 1000:.0f} ms")

        linear = derive_time(ROOT / "tests" / "large" / "linear_100.yaml")
        figure("3. 100x100 W @ x + b with a loss, Markdown and JSON, seconds", linear, "<= 5", linear <= 5,
               "tests/large/linear_100.yaml, 10,100 parameters")

        out = folder / "gallery"
        gallery = ROOT / "derivations"
        start = time.perf_counter()
        subprocess.run([derive, "build", str(gallery), "--out", str(out), "--format", "md,json,tex,pdf", "-j", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        build = time.perf_counter() - start
        tex = sorted(out.glob("*.tex"))
        alone = latexmk_alone(tex)
        figure("4. gallery build with PDF / latexmk alone on its .tex files", build / alone, "<= 1.25",
               build / alone <= 1.25, f"{len(tex)} specs, one at a time: {build:.1f} s / {alone:.1f} s")
        start = time.perf_counter()
        subprocess.run([derive, "build", str(gallery), "--out", str(folder / "parallel"), "--format",
                        "md,json,tex,pdf"], check=True, stdout=subprocess.DEVNULL)
        print(f"     (the same build with -j {os.cpu_count()}, the default: {time.perf_counter() - start:.1f} s)")

        noop = command_time([derive, "build", str(gallery), "--out", str(out), "--format", "md,json,tex,pdf"], 9)
        bare = command_time([sys.executable, "-c", "import generator"], 9)
        figure("5. no-op rebuild of the gallery / python -c 'import generator'", noop / bare, "<= 3", noop / bare <= 3,
               f"{noop * 1000:.0f} ms / {bare * 1000:.0f} ms")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
