"""Print the figures of derive's performance targets, measured on this machine.

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


NET_SPEC = """title: "PyTorch's two-layer net, full size ({dtype})"
dtype: {dtype}
inputs:
  x:
    file: x.npy
  y:
    file: y.npy
  w1:
    file: w1.npy
    requires_grad: true
  w2:
    file: w2.npy
    requires_grad: true
steps:
  h: (x @ w1).clamp(min=0)
  y_pred: h @ w2
  loss: ((y_pred - y) ** 2).sum()
backward: loss
"""

CHAIN_SPEC = """title: "an elementwise chain over {n}x{n} elements, and a mean"
dtype: float64
inputs:
  x:
    file: x.npy
    requires_grad: true
steps:
  a: x * 0.5 + 1
  b: (a ** 2).tanh()
  c: b * x.sigmoid()
  out: c.mean()
backward: out
"""

TORCH_NET = """import pathlib, numpy, torch
here = pathlib.Path(__file__).parent
x, y, w1, w2 = (torch.tensor(numpy.load(here / f"{{n}}.npy"), dtype=torch.{dtype}) for n in ("x", "y", "w1", "w2"))
w1.requires_grad_()
w2.requires_grad_()
loss = ((x.mm(w1).clamp(min=0).mm(w2) - y) ** 2).sum()
loss.backward()
"""


def write_net(folder: Path, dtype: str) -> Path:
    """Write the two-layer net of PyTorch's tutorial (N=64, D_in=1000, H=100, D_out=10) with .npy inputs."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, shape in (("x", (64, 1000)), ("y", (64, 10)), ("w1", (1000, 100)), ("w2", (100, 10))):
        np.save(folder / f"{name}.npy", rng.standard_normal(shape).astype(dtype))
    (folder / "torch_net.py").write_text(TORCH_NET.format(dtype=dtype))
    path = folder / "net.yaml"
    path.write_text(NET_SPEC.format(dtype=dtype))
    return path


def write_chain(folder: Path, n: int) -> Path:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", np.random.default_rng(1).standard_normal((n, n)))
    path = folder / "chain.yaml"
    path.write_text(CHAIN_SPEC.format(n=n))
    return path


def process_cost(args: list[str], runs: int = 3, *, may_fail: bool = False) -> tuple[float, int, int]:
    """Return the median seconds of a whole command, its peak memory in bytes (the largest of its processes) and its
    exit code (which must be 0 unless may_fail)."""
    probe = ("import resource, subprocess, sys, time; s = time.perf_counter(); "
             "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
             "print(time.perf_counter() - s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, code)")
    found = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True).stdout
        seconds, peak, code = out.split()
        if int(code) and not may_fail:
            raise SystemExit(f"{' '.join(args)} exited with {code}")
        found.append((float(seconds), int(peak), int(code)))
    return statistics.median(s for s, _, _ in found), max(p for _, p, _ in found), found[-1][2]


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

        gib = 2**30
        for number, dtype in (("6", "float64"), ("7", "float32")):
            net = write_net(folder / f"net_{dtype}", dtype)
            build = [derive, "build", str(net), "--out", str(net.parent / "out"), "--format", "md,json", "--force"]
            seconds, peak, _ = process_cost(build)
            figure(f"{number}. the tutorial's two-layer net, full size, {dtype}: derive build --format md,json, seconds",
                   seconds, "<= 3 and <= 1 GiB", seconds <= 3 and peak <= gib,
                   f"peak memory {peak / 2**20:.0f} MiB; x 64x1000, w1 1000x100 from .npy files")
        for dtype in ("float64", "float32"):
            net = folder / f"net_{dtype}" / "net.yaml"
            check, _, code = process_cost([derive, "check", str(net)], 1, may_fail=True)
            alone, _, _ = process_cost([sys.executable, str(net.parent / "torch_net.py")], 1)
            print(f"     (derive check of the {dtype} net: {check:.1f} s, {'agrees' if code == 0 else 'DISAGREES'};"
                  f" torch's own forward and backward as a process, import included: {alone:.1f} s)")

        small, _, _ = process_cost([derive, "build", str(write_chain(folder / "chain_100", 100)), "--out",
                                 str(folder / "chain_100" / "out"), "--format", "md,json", "--force"])
        large, peak, _ = process_cost([derive, "build", str(write_chain(folder / "chain_1000", 1000)), "--out",
                                    str(folder / "chain_1000" / "out"), "--format", "md,json", "--force"])
        figure("8. an elementwise chain and a mean over 1000x1000 elements, derive build --format md,json, seconds",
               large, "<= 10 and <= 2 GiB", large <= 10 and peak <= 2 * gib, f"peak memory {peak / 2**20:.0f} MiB")
        figure("9. the same chain over 1000x1000 / over 100x100", large / small, "<= 100", large / small <= 100,
               f"{large:.2f} s / {small:.2f} s")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
