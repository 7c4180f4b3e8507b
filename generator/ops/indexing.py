"""Indexing and reshaping: x[i], one slice along the first dim; x.view(...) and x.reshape(...)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .base import LETTERS, ExprError, Op, ShapeError, Spelling, bind_args, fmt_shape, int_arg, int_index, el, numel, times

@dataclass(frozen=True)
class Select(Op):
    """x[i]: one slice along the first dim."""

    def shape(self, shapes, params):
        shape = shapes[0]
        if not shape:
            raise ShapeError("cannot index a 0-d tensor (allowed: indexing tensors with at least one dim)")
        i = params["index"]
        if not -shape[0] <= i < shape[0]:
            raise ShapeError(f"index {i} is out of range for size {shape[0]} (allowed: {-shape[0]} to {shape[0] - 1})")
        return shape[1:]

    def forward(self, xs, shapes, params):
        shape = shapes[0]
        size = numel(shape[1:])
        start = (params["index"] % shape[0]) * size
        return xs[0][start:start + size]

    def partials(self, xs, outs, shapes, params):
        shape = shapes[0]
        size = numel(shape[1:])
        start = (params["index"] % shape[0]) * size
        for k in range(size):
            yield k, 0, start + k, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        return xs[0][params["index"]].copy()

    def array_local(self, xs, out, shapes, params):
        size = numel(shapes[0][1:])
        start = (params["index"] % shapes[0][0]) * size
        return [(0, np.arange(size), start + np.arange(size), np.ones(size), None)]

    def forward_tex(self, out, args, out_shape, params):
        rest = list(LETTERS[: len(out_shape)])
        index = params["index"] % args[0].shape[0]
        return rf"{el(out, rest)} = {el(args[0].tex, [str(index)] + rest)}"

    def forward_numbers(self, k, xs, shapes, params, number):
        size = numel(shapes[0][1:])
        return number(float(xs[0][(params["index"] % shapes[0][0]) * size + k]))

    def backward_tex(self, a, args, out, out_shape, params, up):
        own = list(LETTERS[: len(args[0].shape)])
        index = params["index"] % args[0].shape[0]
        return times(up(el(out, own[1:])), rf"\left[{own[0]} = {index}\right]")

    def latex(self, ts, params):
        return rf"{ts[0]}\left[{params['index']}\right]"

    def run(self, torch, ts, params):
        return ts[0][params["index"]]

    def subscript(self, walk, subject, index, *, top):
        base = walk.tensor(subject, "the indexed value")
        return walk.make(self.key, [base], {"index": int_index(index)}, top=top)


@dataclass(frozen=True)
class View(Op):
    """x.view(2, 3) or x.reshape(-1): the same elements in row-major order, another shape."""

    def call_params(self, walk, name, args, kwargs):
        if kwargs:
            raise ExprError(f"{name}() takes sizes only (allowed: x.{name}(2, 3), x.{name}((2, 3)), x.{name}(-1))")
        sizes = args[0].elts if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)) else args
        if not sizes:
            raise ExprError(f"{name}() needs the new sizes (allowed: x.{name}(2, 3))")
        return {"sizes": tuple(int_index(a) for a in sizes), "name": name}

    def call(self, walk, name, subject, args, kwargs, *, top):
        x = walk.tensor(subject, f"{name}'s operand")
        if walk.strided(x):  # torch's strides decide there: view raises, reshape copies (UnsafeViewBackward0) or not
            raise ExprError(f"{name}() of a tensor computed through a transpose"
                            f" (allowed: {name}() of tensors computed without .T or .t(); not supported yet)")
        return walk.make(self.key, [x], self.call_params(walk, name, args, kwargs), top=top)

    def shape(self, shapes, params):
        sizes, size = params["sizes"], numel(shapes[0])
        if sum(1 for n in sizes if n == -1) > 1 or any(n < -1 for n in sizes):
            raise ShapeError(f"{params['name']}{tuple(sizes)}: sizes must be positive, with at most one -1"
                             " (allowed: x.view(2, -1))")
        known = numel(tuple(n for n in sizes if n != -1))
        if -1 in sizes:
            if known == 0 or size % known:
                raise ShapeError(f"{fmt_shape(shapes[0])} cannot be viewed as {list(sizes)}"
                                 f" (allowed: sizes whose product is {size})")
            sizes = tuple(size // known if n == -1 else n for n in sizes)
        if numel(sizes) != size:
            raise ShapeError(f"{fmt_shape(shapes[0])} cannot be viewed as {list(sizes)}"
                             f" (allowed: sizes whose product is {size})")
        return tuple(sizes)

    def forward(self, xs, shapes, params):
        return list(xs[0])

    def partials(self, xs, outs, shapes, params):
        for k in range(len(xs[0])):
            yield k, 0, k, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        return np.asarray(xs[0]).reshape(self.shape(shapes, params)).copy()

    def array_local(self, xs, out, shapes, params):
        size = numel(shapes[0])
        return [(0, np.arange(size), np.arange(size), np.ones(size), None)]

    @staticmethod
    def _flat(letters: list[str], shape: tuple[int, ...]) -> str:
        """Write the row-major position of an element with these index letters: 2i + j."""
        terms = []
        for d, letter in enumerate(letters):
            stride = numel(shape[d + 1:])
            terms.append(letter if stride == 1 else f"{stride}{letter}")
        return " + ".join(terms) or "0"

    def _element(self, tex: str, shape: tuple[int, ...], position: str, single: bool) -> str:
        """Write the element of a tensor at a row-major position: x_{2i + j}, or its indices when it has dims."""
        if not shape:
            return tex
        if len(shape) == 1:
            return el(tex, [position]) if single else f"{tex}_{{{position}}}"
        parts = []
        for d in range(len(shape)):
            stride, size = numel(shape[d + 1:]), shape[d]
            inner = f"({position})" if " " in position else position
            part = inner if stride == 1 else rf"\lfloor {inner} / {stride} \rfloor"
            parts.append(part if d == 0 else rf"{part} \bmod {size}")
        return f"{tex}_{{{', '.join(parts)}}}"

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        position = self._flat(letters, out_shape)
        return rf"{el(out, letters)} = {self._element(args[0].tex, args[0].shape, position, len(letters) == 1)}"

    def forward_numbers(self, k, xs, shapes, params, number):
        return number(float(xs[0][k]))

    def backward_tex(self, a, args, out, out_shape, params, up):
        own = list(LETTERS[: len(args[0].shape)])
        position = self._flat(own, args[0].shape)
        return up(self._element(out, out_shape, position, len(own) == 1))

    def grad_fn(self, consts, shapes, params):
        return "ViewBackward0"

    def latex(self, ts, params):
        return rf"\operatorname{{{params['name']}}}_{{{fmt_shape(params['sizes'])}}}\left({ts[0]}\right)"

    def run(self, torch, ts, params):
        return getattr(ts[0], params["name"])(*params["sizes"])


def _dim(d: int, rank: int, name: str) -> int:
    """Return a dim counted from the front, or raise as torch does for one out of range."""
    if not -rank <= d < rank:
        raise ShapeError(f"{name}(): dim {d} is out of range for {rank} dimension(s)"
                         f" (allowed: {-rank} to {rank - 1})" if rank else f"{name}(): a scalar has no dim {d}")
    return d % rank


@dataclass(frozen=True)
class Reshaped(View):
    """unsqueeze(dim), squeeze(dim), flatten(start_dim, end_dim): a view whose sizes follow from the input's."""

    defaults: tuple[tuple[str, Any], ...] = ()  # torch's arguments after the input, with defaults (None: absent)
    needs: tuple[str, ...] = ()
    row_major: bool = False  # torch reshapes (flatten): refused behind a transpose, as view is

    def call(self, walk, name, subject, args, kwargs, *, top):
        x = walk.tensor(subject, f"{name}'s operand")
        if self.row_major and walk.strided(x):
            raise ExprError(f"{name}() of a tensor computed through a transpose"
                            f" (allowed: {name}() of tensors computed without .T or .t(); not supported yet)")
        return walk.make(self.key, [x], self.call_params(walk, name, args, kwargs), top=top)

    def call_params(self, walk, name, args, kwargs):
        bound = bind_args(name, args, kwargs, tuple(k for k, _ in self.defaults), required=self.needs)
        params: dict[str, Any] = {"name": name}
        for key, default in self.defaults:
            node = bound.get(key)
            if isinstance(node, (ast.Tuple, ast.List)):
                raise ExprError(f"{name}()'s {key}= takes one integer here (allowed: an integer such as 0 or -1)")
            params[key] = default if node is None or isinstance(node, ast.Constant) and node.value is None \
                else int_arg(node, key)
        return params

    def shape(self, shapes, params):
        shape, name = tuple(shapes[0]), params["name"]
        if self.key == "unsqueeze":
            d = _dim(params["dim"], len(shape) + 1, name)
            return shape[:d] + (1,) + shape[d:]
        if self.key == "squeeze":
            if params["dim"] is None:
                return tuple(n for n in shape if n != 1)
            if not shape:
                return shape
            d = _dim(params["dim"], len(shape), name)
            return shape[:d] + shape[d + 1:] if shape[d] == 1 else shape
        if not shape:
            return (1,)
        start, end = (_dim(params[k], len(shape), name) for k in ("start_dim", "end_dim"))
        if start > end:
            raise ShapeError(f"{name}(): start_dim {start} comes after end_dim {end} (allowed: start_dim <= end_dim)")
        if start == end:
            raise ShapeError(f"{name}() over one dim returns the tensor itself, which derive does not follow"
                             " (allowed: a flatten over two or more dims)")
        return shape[:start] + (numel(shape[start:end + 1]),) + shape[end + 1:]

    def grad_fn(self, consts, shapes, params):
        if self.key == "squeeze":
            return "SqueezeBackward0" if params["dim"] is None else "SqueezeBackward1"
        return self.grad_fn_name

    def latex(self, ts, params):
        shown = [str(params[k]) for k, default in self.defaults if params[k] is not None and params[k] != default]
        below = f"_{{{', '.join(shown)}}}" if shown else ""
        return rf"\operatorname{{{self.key}}}{below}\left({ts[0]}\right)"

    def run(self, torch, ts, params):
        return getattr(ts[0], self.key)(*(params[k] for k, _ in self.defaults if params[k] is not None))


INDEXING = [
    Select("select", "indexing", "SelectBackward0", Spelling(subscript=True), saves=False),
    View("view", "reshaping", "ViewBackward0", Spelling(names=("view", "reshape")), saves=False),
    Reshaped("unsqueeze", "reshaping", "UnsqueezeBackward0", Spelling(names=("unsqueeze",)), saves=False,
             defaults=(("dim", None),), needs=("dim",)),
    Reshaped("squeeze", "reshaping", "SqueezeBackward0", Spelling(names=("squeeze",)), saves=False,
             defaults=(("dim", None),)),
    Reshaped("flatten", "reshaping", "ViewBackward0", Spelling(names=("flatten",)), saves=False,
             defaults=(("start_dim", 0), ("end_dim", -1)), row_major=True),
]
