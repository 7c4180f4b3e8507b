"""Tensors laid out anew: torch.cat and torch.stack put several side by side, expand repeats one along size-1 dims."""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .base import (
    LETTERS, ExprError, Op, ShapeError, Spelling, aligned, bind_args, el, fmt_shape, free, int_arg, numel,
    sizes_arg, source_index, summed, unravel,
)


@dataclass(frozen=True)
class Join(Op):
    """torch.cat(tensors, dim) and torch.stack(tensors, dim): each output element is one operand's element."""

    new_dim: bool = False  # stack: the operands meet along a new dim, one index per operand

    def call(self, walk, name, subject, args, kwargs, *, top):
        if not isinstance(subject, (ast.List, ast.Tuple)) or not subject.elts:
            raise ExprError(f"{name}() takes a list of tensors first (allowed: torch.{name}([a, b], dim=0))")
        tensors = [walk.tensor(item, f"{name}'s operand") for item in subject.elts]
        bound = bind_args(name, args, kwargs, ("dim",))
        dim = int_arg(bound.get("dim"), "dim")
        return walk.make(self.key, tensors, {"dim": 0 if dim is None else dim, "name": name}, top=top)

    def _dim(self, shapes, params) -> int:
        rank = len(shapes[0]) + self.new_dim
        d = params["dim"]
        if not shapes[0] and not self.new_dim:
            raise ShapeError(f"{params['name']}() of 0-d tensors, which have no dim to join along"
                             " (allowed: torch.stack for scalars, or tensors with a dim)")
        if not -rank <= d < rank:
            raise ShapeError(f"{params['name']}(): dim {d} is out of range for {rank} dimension(s)"
                             f" (allowed: {-rank} to {rank - 1})")
        return d % rank

    def shape(self, shapes, params):
        d = self._dim(shapes, params)
        first = shapes[0]
        for s in shapes[1:]:
            fits = s == first if self.new_dim else (len(s) == len(first)
                                                    and all(a == b for i, (a, b) in enumerate(zip(s, first)) if i != d))
            if not fits:
                allowed = "equal shapes" if self.new_dim else f"equal sizes in every dim but dim {d}"
                raise ShapeError(f"{params['name']}() cannot join {fmt_shape(first)} and {fmt_shape(s)}"
                                 f" (allowed: {allowed})")
        if self.new_dim:
            return first[:d] + (len(shapes),) + first[d:]
        return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1:]

    def _layout(self, shapes, params) -> tuple[np.ndarray, np.ndarray]:
        """Return, per output element (flat), the operand it comes from and its flat index there."""
        d = self._dim(shapes, params)
        join = np.stack if self.new_dim else np.concatenate
        owner = join([np.full(s, a, dtype=np.int64) for a, s in enumerate(shapes)], axis=d)
        index = join([np.arange(numel(s), dtype=np.int64).reshape(s) for s in shapes], axis=d)
        return owner.reshape(-1), index.reshape(-1)

    def forward(self, xs, shapes, params):
        owner, index = self._layout(shapes, params)
        return [xs[a][j] for a, j in zip(owner.tolist(), index.tolist())]

    def partials(self, xs, outs, shapes, params):
        owner, index = self._layout(shapes, params)
        for k, (a, j) in enumerate(zip(owner.tolist(), index.tolist())):
            yield k, a, j, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        d = self._dim(shapes, params)
        parts = [np.asarray(x, dtype=np.float64).reshape(s) for x, s in zip(xs, shapes)]
        return (np.stack if self.new_dim else np.concatenate)(parts, axis=d)

    def array_local(self, xs, out, shapes, params):
        owner, index = self._layout(shapes, params)
        found = []
        for a in range(len(shapes)):
            rows = np.flatnonzero(owner == a)
            found.append((a, rows, index[rows], np.ones(rows.size), None))
        return found

    def forward_numbers(self, k, xs, shapes, params, number):
        owner, index = self._layout(shapes, params)
        return number(float(np.ravel(xs[int(owner[k])])[int(index[k])]))

    def _place(self, a, shapes, d) -> tuple[int, int]:
        """Return where operand a starts along the output's dim d, and its size there (1 for stack)."""
        if self.new_dim:
            return a, 1
        return sum(s[d] for s in shapes[:a]), shapes[a][d]

    def forward_tex(self, out, args, out_shape, params):
        shapes = [x.shape for x in args]
        d = self._dim(shapes, params)
        letters = list(LETTERS[: len(out_shape)])
        rows = []
        for a, x in enumerate(args):
            start, size = self._place(a, shapes, d)
            own = self._operand_index(letters, d, start)
            where = f"{letters[d]} = {start}" if self.new_dim else (
                rf"{start} \le {letters[d]} < {start + size}" if start else f"{letters[d]} < {size}")
            rows.append(rf"{el(x.tex, own)} & \text{{if }} {where}")
        cases = r" \\ ".join(rows)
        return rf"{el(out, letters)} = \begin{{cases}} {cases} \end{{cases}}"

    def _operand_index(self, letters: list[str], d: int, start: int) -> list[str]:
        """Return an operand's index written with the output's letters."""
        if self.new_dim:
            return letters[:d] + letters[d + 1:]
        shifted = letters[d] if not start else f"{letters[d]} - {start}"
        return letters[:d] + [shifted] + letters[d + 1:]

    def backward_tex(self, a, args, out, out_shape, params, up):
        shapes = [x.shape for x in args]
        d = self._dim(shapes, params)
        own = list(LETTERS[: len(args[a].shape)])
        start, _ = self._place(a, shapes, d)
        if self.new_dim:
            index = own[:d] + [str(start)] + own[d:]
        else:
            index = own[:d] + [own[d] if not start else f"{own[d]} + {start}"] + own[d + 1:]
        return up(el(out, index))

    def latex(self, ts, params):
        return rf"\operatorname{{{params['name']}}}_{{\text{{dim}}={params['dim']}}}\left({', '.join(ts)}\right)"

    def run(self, torch, ts, params):
        return (torch.stack if self.new_dim else torch.cat)(ts, dim=params["dim"])


@dataclass(frozen=True)
class Expand(Op):
    """x.expand(3, 2): size-1 dims (and new leading ones) repeated, without copying; the gradient sums back."""

    def call_params(self, walk, name, args, kwargs):
        return {"sizes": sizes_arg(name, args, kwargs, "3, 2")}

    def shape(self, shapes, params):
        sizes, shape = params["sizes"], shapes[0]
        lead = len(sizes) - len(shape)
        problem = lead < 0
        out = []
        for i, n in enumerate(sizes):
            have = shape[i - lead] if i >= lead else None
            if n == -1 and have is not None:
                n = have
            elif n < 1 or (have is not None and have not in (1, n)):
                problem = True
            out.append(n)
        if problem:
            raise ShapeError(f"{fmt_shape(shape)} cannot be expanded to {list(sizes)} (allowed: each size equal to the"
                             " tensor's, or any size where it has 1, or -1 to keep it; new dims only in front)")
        return tuple(out)

    def _sources(self, shapes, params) -> np.ndarray:
        out_shape = self.shape(shapes, params)
        return np.array([source_index(unravel(k, out_shape), shapes[0]) for k in range(numel(out_shape))],
                        dtype=np.int64)

    def forward(self, xs, shapes, params):
        return [xs[0][j] for j in self._sources(shapes, params).tolist()]

    def partials(self, xs, outs, shapes, params):
        for k, j in enumerate(self._sources(shapes, params).tolist()):
            yield k, 0, j, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        return np.broadcast_to(np.asarray(xs[0], dtype=np.float64).reshape(shapes[0]),
                               self.shape(shapes, params)).copy()

    def array_local(self, xs, out, shapes, params):
        sources = self._sources(shapes, params)
        return [(0, np.arange(sources.size), sources, np.ones(sources.size), None)]

    def forward_numbers(self, k, xs, shapes, params, number):
        return number(float(np.ravel(xs[0])[int(self._sources(shapes, params)[k])]))

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        return rf"{el(out, letters)} = {el(args[0].tex, aligned(args[0].shape, letters, out_shape))}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        own = list(LETTERS[: len(args[0].shape)])
        lead = len(out_shape) - len(own)
        extra = iter(free(own, len(out_shape)))
        letters = [next(extra) for _ in range(lead)]
        letters += [c if n == m else next(extra) for c, n, m in zip(own, args[0].shape, out_shape[lead:])]
        return summed([c for c in letters if c not in own], up(el(out, letters)))

    def latex(self, ts, params):
        return rf"\operatorname{{expand}}_{{{fmt_shape(params['sizes'])}}}\left({ts[0]}\right)"

    def run(self, torch, ts, params):
        return ts[0].expand(tuple(params["sizes"]))  # a tuple: () is a 0-d tensor's size


LAYOUT = [
    Join("cat", "joining", "CatBackward0", Spelling(names=("cat", "concat", "concatenate")), saves=False),
    Join("stack", "stacking", "StackBackward0", Spelling(names=("stack",)), saves=False, new_dim=True),
    Expand("expand", "broadcasting", "ExpandBackward0", Spelling(names=("expand",)), saves=False),
]
