"""nn.Linear, nn.MSELoss and torch.optim.SGD: read (never run), derived, and proven against real torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_python import problems, run, write
from tests.test_updates import assert_agrees

CORPUS = Path(__file__).parent / "corpus" / "44_loeber_optimizer_zero_grad.py"

# Each is run in real torch (the oracle) and through derive: printed lines byte for byte, final grads.
TRAINING = {
    "two features": """
        import torch
        import torch.nn as nn
        X = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.25]])
        Y = torch.tensor([[1.0], [0.0], [2.0]])
        model = nn.Linear(2, 1)
        nn.init.constant_(model.weight, 0.3)
        nn.init.constant_(model.bias, -0.1)
        loss = nn.MSELoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        for epoch in range(5):
            l = loss(model(X), Y)
            l.backward()
            print(model.weight.grad, model.bias.grad)
            optimizer.step()
            optimizer.zero_grad()
            print(epoch, l.item())
        print(model.weight, model.bias)
        w, b = model.parameters()
    """,
    "no bias, summed loss": """
        import torch
        from torch import nn
        X = torch.tensor([[1.0, -2.0], [0.5, 1.5]])
        Y = torch.tensor([[0.5, 1.0], [-1.0, 2.0]])
        model = torch.nn.Linear(2, 2, bias=False)
        torch.nn.init.constant_(model.weight, 0.25)
        criterion = nn.MSELoss(reduction='sum')
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for i in range(4):
            out = criterion(model(X), Y)
            out.backward()
            optimizer.step()
            optimizer.zero_grad()
        [w] = model.parameters()
        print(w, out)
    """,
    "zeroed, not cleared": """
        import torch
        import torch.nn as nn
        X = torch.tensor([[1.0], [2.0], [3.0]])
        Y = torch.tensor([[2.0], [4.0], [6.0]])
        model = nn.Linear(1, 1)
        nn.init.constant_(model.weight, 0.5)
        nn.init.constant_(model.bias, -0.25)
        loss = nn.MSELoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(3):
            l = loss(Y, model(X))
            l.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)
            print(model.weight.grad, model.bias.grad)
        w, b = model.parameters()
    """,
    "SGD over tensors": """
        import torch
        x = torch.tensor([1.0, 2.0, 3.0])
        y = torch.tensor([2.5, 4.5, 6.5])
        w = torch.tensor(0.3, requires_grad=True)
        b = torch.tensor(0.1, requires_grad=True)
        optimizer = torch.optim.SGD([w, b], lr=0.02)
        for step in range(6):
            loss = ((w * x + b - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            print(f'{step}: w = {w.item()}, b = {b.item()}, loss = {loss.item():.6f}')
    """,
    "set under no_grad": """
        import torch
        import torch.nn as nn
        X = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0]])
        Y = torch.tensor([[1.0, 0.5], [0.0, -0.5]])
        model = nn.Linear(3, 2)
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]))
            model.bias.fill_(0.05)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for i in range(3):
            l = torch.nn.functional.mse_loss(model(X), Y)
            l.backward()
            optimizer.step()
            optimizer.zero_grad()
            print(f"{l.item():.6f}", model(X[0]).sum().item())
        print(model.weight, model.bias, model.weight.grad)
    """,
    "the module's own zero_grad": """
        import torch
        import torch.nn as nn
        model = nn.Linear(1, 1)
        nn.init.constant_(model.weight, 2.0)
        nn.init.constant_(model.bias, 1.0)
        x = torch.tensor([[3.0], [-0.5]])
        model(x).sum().backward()
        print(model.weight.grad, model.bias.grad)
        model.zero_grad()
        print(model.weight.grad)
    """,
    "float64": """
        import torch
        import torch.nn as nn
        X = torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
        Y = torch.tensor([[2.0], [4.0], [6.0], [8.0]], dtype=torch.float64)
        model = nn.Linear(1, 1, dtype=torch.float64)
        nn.init.constant_(model.weight, 0.5)
        nn.init.constant_(model.bias, -0.25)
        loss = nn.MSELoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for epoch in range(10):
            l = loss(Y, model(X))
            l.backward()
            optimizer.step()
            optimizer.zero_grad()
        [w, b] = model.parameters()
        print(w[0][0].item(), b.item(), l)
    """,
}


def _fused_apart(lr: float) -> tuple[list[float], list[float]]:
    """Return weights and grads (float32) where p + (-lr)·g rounded once differs from rounding -lr·g first."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal(4000).astype(np.float32)
    g = rng.standard_normal(4000).astype(np.float32)
    alpha = np.float64(np.float32(-lr))
    once = (w.astype(np.float64) + alpha * g.astype(np.float64)).astype(np.float32)
    twice = w + np.float32(-lr) * g
    apart = np.flatnonzero(once != twice)[:6]
    return w[apart].tolist(), g[apart].tolist()


class TestTraining:
    def test_the_corpus_snippet_agrees_with_torch(self, tmp_path):
        """The tutorial's nn.Linear, nn.MSELoss and SGD loop prints what torch prints, digit for digit."""
        assert_agrees(tmp_path, CORPUS.read_text())

    @pytest.mark.parametrize("code", TRAINING.values(), ids=TRAINING.keys())
    def test_prints_and_grads_are_torch_s(self, tmp_path, code):
        """A module, a loss and an optimizer print what torch prints, and every leaf's final .grad is torch's."""
        assert_agrees(tmp_path, code, 1e-12 if "float64" in code else 1e-6)

    def test_step_rounds_once_as_torch_s_kernel(self, tmp_path):
        """optimizer.step() computes p - lr·grad with one rounding, where rounding lr·grad first would differ."""
        values, grads = _fused_apart(0.01)
        assert len(values) == 6
        separate = torch.tensor(values) - 0.01 * torch.tensor(grads)
        fused = torch.tensor(values).add_(torch.tensor(grads), alpha=-0.01)
        assert not torch.equal(fused, separate)  # the snippet tells the two roundings apart
        items = ", ".join(f"w[{i}].item()" for i in range(6))
        assert_agrees(tmp_path, f"""
            import torch
            w = torch.tensor({values}, requires_grad=True)
            g = torch.tensor({grads})
            optimizer = torch.optim.SGD([w], lr=0.01)
            (w * g).sum().backward()
            optimizer.step()
            print({items})
        """)


class TestReadOps:
    def test_add_with_alpha_is_torch_s(self, tmp_path):
        """torch.add(x, w, alpha=k) and x.add(t, alpha=k), which step() is made of, give torch's values and grads."""
        assert_agrees(tmp_path, """
            import torch
            x = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
            w = torch.tensor([0.3, 0.7, -0.1], requires_grad=True)
            y = torch.add(x, w, alpha=-0.01)
            z = x.add(w * w, alpha=3)
            out = (y * z).sum()
            out.backward()
            print(y, z, x.grad, w.grad)
        """)


def _document(tmp_path: Path, code: str) -> str:
    path = write(tmp_path, code)
    assert run("build", str(path), "--out", str(tmp_path / "o"), "--format", "md")[0] == 0
    return (tmp_path / "o" / "example.md").read_text(encoding="utf-8")


class TestDocument:
    def test_says_what_the_modules_do_with_the_numbers(self, tmp_path):
        """The page says what nn.Linear, nn.MSELoss, step() and zero_grad() do, with the example's numbers."""
        text = _document(tmp_path, CORPUS.read_text())
        w = torch.tensor([[0.5]], requires_grad=True)
        b = torch.tensor([-0.25], requires_grad=True)
        X = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
        torch.nn.functional.mse_loss(2 * X, X @ w.T + b).backward()
        after = str(np.float32(w.detach().add(w.grad, alpha=-0.01).item()))  # float32's shortest decimal
        assert "(line 31) makes a linear layer: a weight `weight` of shape 1×1 and a bias `bias` of shape 1" in text
        assert r"sets them to $\begin{bmatrix} 0.5 \end{bmatrix}$ and $\begin{bmatrix} -0.25 \end{bmatrix}$" in text
        assert "Calling `model(x)` computes `x @ weight.T + bias`" in text
        assert "`loss(input, target)` is `torch.nn.functional.mse_loss(input, target)`" in text
        assert "p − 0.01 · p.grad, with one rounding" in text
        assert rf"the first step takes `weight` from $\begin{{bmatrix}} 0.5 \end{{bmatrix}}$ to $\begin{{bmatrix}} {after} \end{{bmatrix}}$" in text
        assert "`optimizer.zero_grad()` then sets each `.grad` to `None`" in text

    def test_says_zero_grad_keeps_zeros_in_chinese(self, tmp_path):
        """zero_grad(set_to_none=False) is told as zeros, in the Chinese catalog too."""
        text = _document(tmp_path, "# derive: lang=zh\n" + TRAINING["zeroed, not cleared"].replace("\n        ", "\n").strip())
        assert "创建一个线性层" in text and "(input − target)² 的平均值" in text
        assert "`optimizer.zero_grad(set_to_none=False)` 把每个 `.grad` 填成零" in text


class TestRefusals:
    @pytest.mark.parametrize("code, line, message", [
        ("model = nn.Linear(1, 1)\nx = torch.ones(2, 1)\ny = model(x)\n", 4,
         "model.weight is used before it is set: torch draws nn.Linear's initial weight at random"),
        ("model = nn.Linear(1, 1)\nnn.init.constant_(model.weight, 0.5)\nx = torch.ones(2, 1)\ny = model(x)\n", 5,
         "model.bias is used before it is set"),
        ("model = nn.Linear(1, 1)\nw, b = model.parameters()\n", 3, "(allowed: nn.init.constant_(model.weight, c)"),
        ("model = nn.Linear(1, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n", 3,
         "torch.optim.SGD(momentum=0.9) (allowed: not supported yet; plain SGD"),
        ("w = torch.ones(2, requires_grad=True)\nopt = torch.optim.SGD([w], lr=0.1, weight_decay=0.01)\n", 3,
         "torch.optim.SGD(weight_decay=0.01)"),
        ("w = torch.ones(2, requires_grad=True)\nopt = torch.optim.Adam([w], lr=0.1)\n", 3,
         "torch.optim.Adam, an optimizer derive does not read yet (allowed: torch.nn.Linear, torch.nn.MSELoss,"
         " torch.nn.init.constant_, torch.optim.SGD)"),
        ("модель = nn.Linear(1, 1)\n", 2, "the name 'модель' (allowed: a letter, then up to 31 letters"),
        ("layer = nn.ReLU()\n", 2, "torch.nn.ReLU, a module derive does not read yet"),
        ("model = nn.Linear(1, 1)\nnn.init.normal_(model.weight)\n", 3, "torch.nn.init.normal_, which draws random numbers"),
        ("model = nn.Linear(1, 1, bias=False)\nprint(model.bias)\n", 3, "model.bias of nn.Linear(..., bias=False), which is None"),
        ("model = nn.Linear(1, 1)\nmodel.weight.fill_(0.5)\n", 3, "model.weight.fill_(...) while torch records: torch raises"),
        ("model = nn.Linear(1, 1, bias=False)\nnn.init.constant_(model.weight, 0.5)\ny = model(torch.ones(2, 1))\n"
         "print(y)\n", 5, "printing 'y', whose grad_fn is nn.Linear's kernel in torch (AddmmBackward0"),
        ("model = nn.Linear(1, 1, bias=False)\nnn.init.constant_(model.weight, 0.5)\nl = model(torch.ones(2, 1)).sum()\n"
         "print(l.grad_fn.next_functions)\n", 5, "printing 'l.grad_fn.next_functions', whose grad_fn is nn.Linear's"),
        ("w = torch.tensor(0.3, requires_grad=True)\nb = torch.tensor(0.1, requires_grad=True)\n"
         "opt = torch.optim.SGD([w, b], lr=0.5)\n(w * 2.0).backward()\nopt.step()\n", 6,
         "b.grad is None here: torch's optimizer.step() skips such a parameter, which derive does not follow yet"),
        ("w = torch.tensor(0.3, requires_grad=True)\nopt = torch.optim.SGD([w], lr=0.5)\n"
         "opt.zero_grad(set_to_none=False)\n", 4, "w.grad is None here: torch's zero_grad(set_to_none=False) skips"),
    ])
    def test_refused_with_location(self, tmp_path, code, line, message):
        """What torch.nn and torch.optim offer beyond what derive reads is refused at its line, naming it."""
        path = write(tmp_path, "import torch\nimport torch.nn as nn\n" + code)
        found = problems(path)
        assert found[0].startswith(f"{path}:{line + 1}: ") and message in found[0], found
        assert all("(allowed: " in p for p in found), found
