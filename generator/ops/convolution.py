"""conv1d and conv2d: each output element a kernel's dot product with the patch of the input under it.

out[n, o, i, j] = b[o] + Σ_{c, p, q} x[n, c, s·i + p - pad, s·j + q - pad] · w[o, c, p, q], with the input read as
0 outside its edges (padding). torch records one node, ConvolutionBackward0, linked to the input, the weight and
the bias. Its local derivatives: ∂out/∂x under the kernel is the weight there, ∂out/∂w is the input element the
kernel entry sat on (so w's gradient adds up, over every output element, the upstream gradient times the patch
that element saw), and ∂out/∂b[o] is 1 for every element of channel o.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .base import (
    ExprError, Op, ShapeError, Spelling, bind_args, checked, el, flat, fmt_shape, int_index, list_tex, numel, ravel,
    sum_tex, unravel,
)


def _sizes(node: ast.AST | None, spatial: int, name: str, key: str, default: int) -> tuple[int, ...]:
    """Return stride= or padding= as one size per spatial dim: an int for all, or a tuple."""
    if node is None:
        return (default,) * spatial
    items = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node] * spatial
    try:
        sizes = tuple(int_index(n) for n in items)
    except ExprError:
        raise ExprError(f"{name}()'s {key}= must be an integer or a tuple of {spatial} (allowed: {key}=1)") from None
    if len(sizes) != spatial or min(sizes) < (1 if key == "stride" else 0):
        raise ExprError(f"{name}()'s {key}= must be {spatial} integer(s), each {'at least 1' if key == 'stride' else 'at least 0'}"
                        f" (allowed: {key}={default})")
    return sizes


def _padding_word(word: str, kernel: tuple[int, ...], stride: tuple[int, ...], name: str) -> tuple[int, ...]:
    """Return padding='valid' (none) or 'same' (the output as large as the input) as sizes, as torch reads them."""
    if word == "valid":
        return (0,) * len(kernel)
    if word != "same":
        raise ExprError(f"Invalid padding string: {word!r} (allowed: padding='same', 'valid', or integers)")
    if any(s != 1 for s in stride):
        raise ExprError(f"padding='same' is not supported for strided convolutions (allowed: stride=1, or padding as"
                        " integers)")
    if any(k % 2 == 0 for k in kernel):
        raise ExprError(f"{name}(padding='same') with an even kernel size: torch pads one side more, in a node of its"
                        " own (ConstantPadNdBackward0) that derive does not read yet (allowed: odd kernel sizes, or"
                        " padding as integers)")
    return tuple((k - 1) // 2 for k in kernel)


@dataclass(frozen=True)
class Convolution(Op):
    """torch.nn.functional.conv1d and conv2d (stride, padding; dilation 1, groups 1), batched or not."""

    words = (("padding", ("same", "valid")),)  # the words padding= takes besides sizes

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("weight", "bias", "stride", "padding", "dilation", "groups"),
                          required=("weight",))
        spatial = 1 if name == "conv1d" else 2
        for key in ("dilation", "groups"):
            if key in bound and _sizes(bound[key], spatial if key == "dilation" else 1, name, key, 1) != (1,) * (
                    spatial if key == "dilation" else 1):
                raise ExprError(f"{name}()'s {key}= other than 1 is not read yet (allowed: {key}=1, the default)")
        padding = bound.get("padding")
        x = walk.tensor(subject, f"{name}'s input")
        operands = [x, walk.tensor(bound["weight"], f"{name}'s weight")]
        bias = bound.get("bias")
        if bias is not None and not (isinstance(bias, ast.Constant) and bias.value is None):
            operands.append(walk.tensor(bias, f"{name}'s bias"))
        stride = _sizes(bound.get("stride"), spatial, name, "stride", 1)
        if isinstance(padding, ast.Constant) and isinstance(padding.value, str):
            pads = _padding_word(padding.value, walk.shape_of(operands[1])[2:], stride, name)
        else:
            pads = _sizes(padding, spatial, name, "padding", 0)
        params = {"spatial": spatial, "stride": stride, "padding": pads, "bias": len(operands) == 3}
        if len(walk.shape_of(x)) != spatial + 1:
            return walk.make(self.key, operands, params, top=top)
        # one example without a batch dim: torch makes it a batch of one, then takes that one back out
        operands[0] = walk.make("unsqueeze", [x], {"name": "unsqueeze", "dim": 0}, top=False)
        return walk.make("squeeze", [walk.make(self.key, operands, params, top=False)], {"name": "squeeze", "dim": 0},
                         top=top)

    def _dims(self, shapes, params):
        """Return (batched, N, C, spatial sizes, O, kernel sizes, output sizes), checking the shapes as torch does."""
        x, w = shapes[0], shapes[1]
        d, name = params["spatial"], f"conv{params['spatial']}d"
        if len(x) not in (d + 1, d + 2) or len(w) != d + 2:
            raise ShapeError(f"{name} takes an input of {d + 1} or {d + 2} dims and a weight of {d + 2}, got"
                             f" {fmt_shape(x)} and {fmt_shape(w)} (allowed: input [N, C, ...], weight [O, C, ...])")
        batched = len(x) == d + 2
        n, c, sizes = (x[0], x[1], x[2:]) if batched else (1, x[0], x[1:])
        o, kernel = w[0], w[2:]
        if w[1] != c:
            raise ShapeError(f"{name}: the weight {fmt_shape(w)} expects {w[1]} input channels, and the input has {c}"
                             f" (allowed: a weight of [{o}, {c}, ...])")
        out = tuple((size + 2 * pad - k) // s + 1 for size, pad, k, s in zip(sizes, params["padding"], kernel, params["stride"]))
        if min(out) < 1:
            raise ShapeError(f"{name}: the kernel {fmt_shape(kernel)} is larger than the padded input"
                             f" {fmt_shape(tuple(s + 2 * p for s, p in zip(sizes, params['padding'])))} (allowed: a smaller kernel)")
        if params["bias"] and tuple(shapes[2]) != (o,):
            raise ShapeError(f"{name}: the bias is {fmt_shape(shapes[2])}, and there are {o} output channels"
                             f" (allowed: a bias of [{o}])")
        return batched, n, c, tuple(sizes), o, tuple(kernel), out

    def shape(self, shapes, params):
        batched, n, c, sizes, o, kernel, out = self._dims(shapes, params)
        checked(n * o * numel(out) * c * numel(kernel), f"conv{params['spatial']}d")
        return ((n,) if batched else ()) + (o, *out)

    def _taps(self, shapes, params):
        """Yield (output index, input index, weight index, channel) for every product inside the input's edges."""
        batched, n, c, sizes, o, kernel, out = self._dims(shapes, params)
        x_shape, w_shape = (n, c, *sizes), (o, c, *kernel)
        for k, (b, oc, *at) in enumerate(itertools.product(range(n), range(o), *(range(s) for s in out))):
            for ic in range(c):
                for tap in itertools.product(*(range(s) for s in kernel)):
                    where = [a * s + t - p for a, s, t, p in zip(at, params["stride"], tap, params["padding"])]
                    if all(0 <= v < size for v, size in zip(where, sizes)):
                        yield k, ravel((b, ic, *where), x_shape), ravel((oc, ic, *tap), w_shape), oc

    def forward(self, xs, shapes, params):
        terms: dict[int, list[sp.Expr]] = {k: [] for k in range(numel(self.shape(shapes, params)))}
        for k, xi, wi, oc in self._taps(shapes, params):
            terms[k].append(xs[0][xi] * xs[1][wi])
        out = []
        for k, products in terms.items():
            total = sp.Add(*products)
            out.append(total + xs[2][self._channel(k, shapes, params)] if params["bias"] else total)
        return out

    def _channel(self, k, shapes, params):
        out_shape = self.shape(shapes, params)
        index = unravel(k, out_shape)
        return index[1] if len(out_shape) == params["spatial"] + 2 else index[0]

    def partials(self, xs, outs, shapes, params):
        for k, xi, wi, oc in self._taps(shapes, params):
            yield k, 0, xi, xs[1][wi]
            yield k, 1, wi, xs[0][xi]
        if params["bias"]:
            for k in range(numel(self.shape(shapes, params))):
                yield k, 2, self._channel(k, shapes, params), sp.Integer(1)

    def _index(self, shapes, params):
        taps = np.array(list(self._taps(shapes, params)), dtype=np.int64).reshape(-1, 4)
        return taps[:, 0], taps[:, 1], taps[:, 2]

    def array_forward(self, xs, shapes, params):
        k, xi, wi = self._index(shapes, params)
        size = numel(self.shape(shapes, params))
        out = np.bincount(k, weights=flat(xs[0])[xi] * flat(xs[1])[wi], minlength=size)
        if params["bias"]:
            out = out + flat(xs[2])[[self._channel(j, shapes, params) for j in range(size)]]
        return out.reshape(self.shape(shapes, params))

    def array_local(self, xs, out, shapes, params):
        k, xi, wi = self._index(shapes, params)
        local = [(0, k, xi, flat(xs[1])[wi], None), (1, k, wi, flat(xs[0])[xi], None)]
        if params["bias"]:
            size = numel(self.shape(shapes, params))
            local.append((2, np.arange(size), np.array([self._channel(j, shapes, params) for j in range(size)]),
                          np.ones(size), None))
        return local

    def _letters(self, shapes, params):
        """Return the output's letters, the kernel's tap letters and the input's index under the kernel."""
        d = params["spatial"]
        batched = len(shapes[0]) == d + 2
        space, taps = ["i", "j"][:d], ["p", "q"][:d]
        out = (["n"] if batched else []) + ["o"] + space
        under = [f"{s} {t}" if stride == 1 and pad == 0 else
                 f"{'' if stride == 1 else str(stride)}{s} + {t}{'' if pad == 0 else f' - {pad}'}"
                 for s, t, stride, pad in zip(space, taps, params["stride"], params["padding"])]
        return out, taps, (["n"] if batched else []) + ["c"] + under

    def forward_tex(self, out, args, out_shape, params):
        letters, taps, under = self._letters([a.shape for a in args], params)
        x, w = args[0], args[1]
        body = rf"\sum_{{c,{','.join(taps)}}} {_at(x.tex, under)} \, {el(w.tex, ['o', 'c', *taps])}"
        bias = f"{el(args[2].tex, ['o'])} + " if params["bias"] else ""
        return rf"{el(out, letters)} = {bias}{body}"

    def forward_numbers(self, k, xs, shapes, params, number):
        x, w = flat(xs[0]), flat(xs[1])
        products = [rf"{number(float(x[xi]))} \cdot {number(float(w[wi]))}"
                    for kk, xi, wi, _ in self._taps(shapes, params) if kk == k]
        terms = ([number(float(flat(xs[2])[self._channel(k, shapes, params)]))] if params["bias"] else []) + products
        return sum_tex(terms) if len(terms) <= 6 else " + ".join(terms[:3] + [r"\cdots"] + terms[-1:])

    def backward_tex(self, a, args, out, out_shape, params, up):
        letters, taps, under = self._letters([t.shape for t in args], params)
        if a == 2:
            return rf"\sum_{{{','.join(c for c in letters if c != 'o')}}} {up(el(out, letters))}"
        if a == 1:
            summed = [c for c in letters if c != "o"]
            return rf"\sum_{{{','.join(summed)}}} {up(el(out, letters))} \, {_at(args[0].tex, under)}"
        return (rf"\sum_{{o,{','.join(letters[-params['spatial']:])}}} {up(el(out, letters))} \,"
                rf" {el(args[1].tex, ['o', 'c', *taps])}")

    def latex(self, ts, params):
        settings = ", ".join(f"{key[0]}={list(params[key]) if len(params[key]) > 1 else params[key][0]}"
                             for key in ("stride", "padding") if any(v != (key == "stride") for v in params[key]))
        return (rf"\operatorname{{conv{params['spatial']}d}}{'_{' + settings + '}' if settings else ''}"
                rf"\left({', '.join(ts)}\right)")

    def run(self, torch, ts, params):
        conv = torch.nn.functional.conv1d if params["spatial"] == 1 else torch.nn.functional.conv2d
        return conv(ts[0], ts[1], ts[2] if params["bias"] else None, stride=params["stride"], padding=params["padding"])


def _at(tex: str, index: list[str]) -> str:
    """Return an element whose index parts may be sums (x_{n, c, i + p}): commas between them then."""
    if all(len(part) == 1 for part in index):
        return el(tex, index)
    return f"{tex}_{{{', '.join(index)}}}"


CONVOLUTION = [
    Convolution("convolution", "sum and product rules", "ConvolutionBackward0", Spelling(functional=("conv1d", "conv2d")),
                inexact32=True),
]
