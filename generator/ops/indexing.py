"""Indexing: x[i], one slice along the first dim."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .base import LETTERS, Op, ShapeError, Spelling, int_index, el, numel, times

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


INDEXING = [
    Select("select", "indexing", "SelectBackward0", Spelling(subscript=True), saves=False),
]
