"""Indexing and reshaping: x[i], x[a:b:c] and x[i, a:b, :] (a select or slice per dim, as torch); view and kin."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .reductions import along
from .base import (
    LETTERS, ExprError, Op, ShapeError, Spelling, aligned, bind_args, dotted_name, el, fmt_shape, free, int_arg, int_index,
    list_tex, norm_dim, numel, sizes_arg, summed, times,
)

MAX_INDEX_ELEMENTS = 1_000_000  # elements an index tensor (or a result of indexing) may have

def _sources(shape: tuple[int, ...], key: tuple) -> np.ndarray:
    """Return, for each element of x[key] in row-major order, the flat position it comes from in x."""
    return np.arange(numel(shape)).reshape(shape)[key].reshape(-1)


@dataclass(frozen=True)
class Part(Op):
    """A part of a tensor that keeps each element as it is: x[i] along a dim (select), x[a:b:c] (slice)."""

    def key_of(self, shape: tuple[int, ...], params: dict[str, Any]) -> tuple:
        """Return the numpy index that picks this part of a tensor of this shape."""
        raise NotImplementedError

    def dim_of(self, shape: tuple[int, ...], params: dict[str, Any]) -> int:
        d = params.get("dim", 0)
        if not shape or not -len(shape) <= d < len(shape):
            raise ShapeError("cannot index a 0-d tensor (allowed: indexing tensors with at least one dim)" if not shape
                             else f"too many indices for a tensor of {len(shape)} dimension(s)"
                                  f" (allowed: at most {len(shape)})")
        return d % len(shape)

    def shape(self, shapes, params):
        return tuple(np.empty(shapes[0], dtype=np.int8)[self.key_of(shapes[0], params)].shape)

    def forward(self, xs, shapes, params):
        return [xs[0][j] for j in _sources(shapes[0], self.key_of(shapes[0], params))]

    def partials(self, xs, outs, shapes, params):
        for k, j in enumerate(_sources(shapes[0], self.key_of(shapes[0], params))):
            yield k, 0, int(j), sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        return np.asarray(xs[0])[self.key_of(shapes[0], params)].copy()

    def array_local(self, xs, out, shapes, params):
        sources = _sources(shapes[0], self.key_of(shapes[0], params))
        return [(0, np.arange(sources.size), sources, np.ones(sources.size), None)]

    def forward_numbers(self, k, xs, shapes, params, number):
        return number(float(np.ravel(xs[0])[_sources(shapes[0], self.key_of(shapes[0], params))[k]]))

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        d = self.dim_of(args[0].shape, params)
        if self.key == "select":
            picked = letters[:d] + [self.position("", args[0].shape[d], params)] + letters[d:]
        else:
            picked = [self.position(c, args[0].shape[d], params) if i == d else c for i, c in enumerate(letters)]
        return rf"{el(out, letters)} = {el(args[0].tex, picked)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        own = list(LETTERS[: len(args[0].shape)])
        d = self.dim_of(args[0].shape, params)
        kept = own[:d] + own[d + 1:] if self.key == "select" else [self.back(c, params) if i == d else c
                                                                     for i, c in enumerate(own)]
        return times(up(el(out, kept)), rf"\left[{own[d]} {self.member(args[0].shape[d], params)}\right]")


@dataclass(frozen=True)
class Select(Part):
    """x[i]: one index along a dim (the first, or the next of x[..., i])."""

    def key_of(self, shape, params):
        d = self.dim_of(shape, params)
        i = params["index"]
        if not -shape[d] <= i < shape[d]:
            raise ShapeError(f"index {i} is out of range for size {shape[d]} (allowed: {-shape[d]} to {shape[d] - 1})")
        return (slice(None),) * d + (i,)

    def position(self, letter, size, params):
        return str(params["index"] % size)

    def member(self, size, params):
        return f"= {params['index'] % size}"

    def latex(self, ts, params):
        d = params.get("dim", 0)
        return rf"{ts[0]}\left[{', '.join([':'] * d + [str(params['index'])])}\right]"

    def run(self, torch, ts, params):
        return ts[0][(slice(None),) * params.get("dim", 0) + (params["index"],)]

    def grad_fn(self, consts, shapes, params):
        return "SelectBackward0"

    def subscript(self, walk, subject, index, *, top):
        found = piece(walk, subject, index, top=top)  # x.chunk(2)[0], x.split(2, dim=1)[-1]
        if found is not None:
            return found
        if isinstance(index, ast.Constant) and type(index.value) is int and index.value in (0, 1):
            if index.value == 0:
                values = along(walk, subject, top=top)  # x.max(dim)[0]: the values
                if values is not None:
                    return values
            elif along(walk, subject, top=False) is not None:
                raise ExprError("x.max(dim)[1] is the indices, integers with no gradient (allowed: x.max(dim)[0] or"
                                " x.max(dim).values)")
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        base = walk.tensor(subject, "the indexed value")
        taken = [index_tensor(walk, item) for item in items]
        if any(t is not None for t in taken):  # x[Yb], x[range(n), Yb], x[:, [0, 2]]: torch's advanced indexing
            steps, kept = self._advanced(items, taken)
            for k, (key, params) in enumerate(steps):  # torch selects and slices first, then indexes with the tensors
                base = walk.make(key, [base], params, top=top and not kept and k == len(steps) - 1)
            return walk.make("index", [base], {"items": kept}, top=top) if kept else base
        steps, dim = [], 0
        for item in items:
            if isinstance(item, ast.Slice):
                parts = [self._bound(p) for p in (item.lower, item.upper, item.step)]
                if parts[2] is not None and parts[2] <= 0:
                    raise ExprError("a slice's step must be positive, as torch requires (allowed: x[a:b:c] with c > 0)")
                whole = parts[0] in (None, 0) and parts[1] is None and parts[2] in (None, 1)
                if len(items) == 1 or not whole:  # torch skips a whole-dim slice inside x[..., ...], not x[:] alone
                    steps.append(("slice", {"dim": dim, "start": parts[0], "stop": parts[1], "step": parts[2] or 1}))
                dim += 1
            else:
                try:
                    index = int_index(item)
                except ExprError:
                    raise ExprError("an index must be an integer, a slice of integers or an int64 tensor"
                                    " (allowed: x[1], x[1:3], x[:, 0], x[::2], x[idx], x[[0, 2]], x[range(3), idx])"
                                    ) from None
                steps.append(("select", {"dim": dim, "index": index}))
        for k, (key, params) in enumerate(steps):
            base = walk.make(key, [base], params, top=top and k == len(steps) - 1)
        return base

    def _advanced(self, items: list[ast.AST], taken: list) -> tuple[list[tuple[str, dict]], tuple]:
        """Return x[...] as torch applies it: the selects and slices first, then the index op's items, ("all",) for a
        dim kept whole or ("take", shape, values, LaTeX, plain) for an index tensor (plain: range(n), its letter)."""
        steps, kept, dim = [], [], 0
        for item, t in zip(items, taken):
            if t is not None and t[0].ndim == 0:  # torch reads a 0-d int64 tensor as an integer: a select
                steps.append(("select", {"dim": dim, "index": int(t[0])}))
            elif t is not None:
                values, tex, plain = t
                kept.append(("take", values.shape, tuple(int(v) for v in values.reshape(-1)), tex, plain))
                dim += 1
            elif isinstance(item, ast.Slice):
                parts = [self._bound(b) for b in (item.lower, item.upper, item.step)]
                if parts[2] is not None and parts[2] <= 0:
                    raise ExprError("a slice's step must be positive, as torch requires (allowed: x[a:b:c] with c > 0)")
                if not (parts[0] in (None, 0) and parts[1] is None and parts[2] in (None, 1)):
                    steps.append(("slice", {"dim": dim, "start": parts[0], "stop": parts[1], "step": parts[2] or 1}))
                kept.append(("all",))
                dim += 1
            else:
                try:
                    steps.append(("select", {"dim": dim, "index": int_index(item)}))
                except ExprError:
                    raise ExprError("beside an index tensor, each index is an integer, a slice or another index tensor"
                                    " (allowed: x[idx], x[:, idx], x[0, idx], x[range(3), idx])") from None
        while kept and kept[-1] == ("all",):
            kept.pop()
        return steps, tuple(kept)

    @staticmethod
    def _bound(node):
        if node is None:
            return None
        try:
            return int_index(node)
        except ExprError:
            raise ExprError("a slice's bounds must be integers (allowed: x[1:3], x[::2], x[:, 0])") from None


@dataclass(frozen=True)
class Slice(Part):
    """x[a:b:c] along a dim: every c-th element from a up to b."""

    def key_of(self, shape, params):
        d = self.dim_of(shape, params)
        return (slice(None),) * d + (slice(params["start"], params["stop"], params["step"]),)

    def _range(self, size, params):
        return range(*slice(params["start"], params["stop"], params["step"]).indices(size))

    def shape(self, shapes, params):
        d = self.dim_of(shapes[0], params)
        if not self._range(shapes[0][d], params):
            bounds = ":".join("" if params[k] is None else str(params[k]) for k in ("start", "stop"))
            bounds += "" if params["step"] == 1 else f":{params['step']}"
            raise ShapeError(f"the slice {bounds} of dim {d} (size {shapes[0][d]}) keeps no element, and derive does not"
                             " follow empty tensors (allowed: a slice that keeps at least one element)")
        return super().shape(shapes, params)

    def position(self, letter, size, params):
        r = self._range(size, params)
        scaled = letter if r.step == 1 else f"{r.step}{letter}"
        return scaled if r.start == 0 else f"{r.start} + {scaled}"

    def back(self, letter, params):
        start, step = params["start"] or 0, params["step"]
        shifted = letter if not start else f"{letter} - {start}" if start > 0 else f"{letter} + {-start}"
        return shifted if step == 1 else rf"({shifted}) / {step}"

    def member(self, size, params):
        r = list(self._range(size, params))
        shown = ", ".join(map(str, r)) if len(r) <= 4 else f"{r[0]}, {r[1]}, \\ldots, {r[-1]}"
        return rf"\in \{{{shown}\}}"

    def latex(self, ts, params):
        d = params.get("dim", 0)
        text = ":".join("" if v is None else str(v) for v in (params["start"], params["stop"]))
        text += "" if params["step"] == 1 else f":{params['step']}"
        return rf"{ts[0]}\left[{', '.join([':'] * d + [text])}\right]"

    def run(self, torch, ts, params):
        return ts[0][self.key_of(tuple(ts[0].shape), params)]

    def grad_fn(self, consts, shapes, params):
        return "SliceBackward0"


@dataclass(frozen=True)
class View(Op):
    """x.view(2, 3) or x.reshape(-1): the same elements in row-major order, another shape."""

    def call_params(self, walk, name, args, kwargs):
        return {"sizes": sizes_arg(name, args, kwargs, "2, 3"), "name": name}

    def call(self, walk, name, subject, args, kwargs, *, top):
        x = walk.tensor(subject, f"{name}'s operand")
        if walk.strided(x):  # torch's strides decide there: view raises, reshape copies (UnsafeViewBackward0) or not
            raise ExprError(f"{name}() of a tensor computed through a transpose or a slice"
                            f" (allowed: {name}() of tensors computed without .T, .t() or x[a:b]; not supported yet)")
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
            raise ExprError(f"{name}() of a tensor computed through a transpose or a slice"
                            f" (allowed: {name}() of tensors computed without .T, .t() or x[a:b]; not supported yet)")
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


def index_tensor(walk, node: ast.AST) -> tuple[np.ndarray, str, bool] | None:
    """Read an index that is a tensor of integers, as (values, LaTeX, whether it is range(n)); None for another index.

    It is an int64 input (Yb), a list of integers ([0, 2], nested for more dims), range(...) or torch.arange(...)
    of integer literals.
    """
    if isinstance(node, ast.Name):
        found = walk.integers(walk.tensor(node, "an index"))
        if found is None:
            return None
        shape, values = found
        return np.array(values, dtype=np.int64).reshape(shape), rf"\mathrm{{{node.id.replace('_', chr(92) + '_')}}}", False
    if isinstance(node, ast.List):
        values = np.array(_nested(node), dtype=np.int64)
        return values, _list_tex(values), False
    if isinstance(node, ast.Call) and (dotted_name(node.func) in ("range", "torch.arange")):
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise ExprError(f"{dotted_name(node.func)}() takes 1 to 3 integers here (allowed: range(4), range(1, 4))")
        bounds = [int_index(a) for a in node.args]
        span = range(*bounds) if len(bounds) > 1 else range(bounds[0])
        if len(span) > MAX_INDEX_ELEMENTS:
            raise ExprError(f"an index of {len(span)} elements (allowed: at most {MAX_INDEX_ELEMENTS})")
        values = np.arange(span.start, span.stop, span.step, dtype=np.int64)
        if not values.size:
            raise ExprError("an empty index, which derive does not follow (allowed: a range with at least one element)")
        shown = ", ".join(str(b) for b in bounds)
        return values, rf"\operatorname{{range}}\left({shown}\right)", span.start == 0 and span.step == 1
    return None


def _nested(node: ast.AST) -> list:
    if isinstance(node, ast.List):
        if not node.elts:
            raise ExprError("an empty list as an index (allowed: a list of integers, such as [0, 2])")
        items = [_nested(e) for e in node.elts]
        if len({np.shape(i) for i in items}) > 1:
            raise ExprError("a ragged list as an index (allowed: a list of integers, or of equal lists)")
        return items
    try:
        return int_index(node)
    except ExprError:
        raise ExprError("a list index holds integers (allowed: x[[0, 2]], x[[0, 1], [1, 2]])") from None


def _list_tex(values: np.ndarray) -> str:
    if values.ndim > 1:
        return r"\left[" + ", ".join(_list_tex(v) for v in values) + r"\right]"
    return r"\left[" + list_tex([str(int(v)) for v in np.ravel(values)]) + r"\right]"


@dataclass(frozen=True)
class Gather(Part):
    """x[idx], x[range(n), y], x[:, [0, 2]]: torch's advanced indexing, each output element one element of x.

    An element picked several times gets the sum of those outputs' gradients (torch's index_put_ with accumulate).
    """

    def _items(self, shape, params) -> list[tuple]:
        items = list(params["items"])
        if len(items) > len(shape):
            raise ShapeError(f"too many indices for a tensor of {len(shape)} dimension(s) (allowed: at most {len(shape)})")
        return items + [("all",)] * (len(shape) - len(items))

    def key_of(self, shape, params):
        return tuple(slice(None) if it[0] == "all" else it[1] if it[0] == "at"
                     else np.array(it[2], dtype=np.int64).reshape(it[1]) for it in self._items(shape, params))

    def layout(self, shape, params) -> tuple[list[tuple], tuple[int, ...], list[tuple[str, int]]]:
        """Return the items, the index tensors' broadcast shape, and where each output dim comes from:
        ("b", i) the broadcast's dim i, or ("x", d) x's dim d (numpy's rule, which torch follows)."""
        items = self._items(shape, params)
        picked = [d for d, it in enumerate(items) if it[0] != "all"]
        try:
            wide = tuple(np.broadcast_shapes(*(it[1] if it[0] == "take" else () for it in items if it[0] != "all")))
        except ValueError:
            shown = ", ".join(fmt_shape(it[1]) for it in items if it[0] == "take")
            raise ShapeError(f"shape mismatch: indexing tensors could not be broadcast together with shapes {shown}"
                             " (allowed: index tensors whose shapes broadcast)") from None
        kept = [d for d, it in enumerate(items) if it[0] == "all"]
        if picked == list(range(picked[0], picked[-1] + 1)):
            order = [("x", d) for d in kept if d < picked[0]] + [("b", i) for i in range(len(wide))] + [
                ("x", d) for d in kept if d > picked[-1]]
        else:
            order = [("b", i) for i in range(len(wide))] + [("x", d) for d in kept]
        return items, wide, order

    def shape(self, shapes, params):
        shape = shapes[0]
        if not shape:
            raise ShapeError("cannot index a 0-d tensor (allowed: indexing tensors with at least one dim)")
        items, wide, order = self.layout(shape, params)
        for d, it in enumerate(items):
            values = [it[1]] if it[0] == "at" else it[2] if it[0] == "take" else ()
            bad = next((v for v in values if not -shape[d] <= v < shape[d]), None)
            if bad is not None:
                raise ShapeError(f"index {bad} is out of bounds for dimension {d} with size {shape[d]}"
                                 f" (allowed: {-shape[d]} to {shape[d] - 1})")
        out = tuple(wide[i] if kind == "b" else shape[i] for kind, i in order)
        if numel(out) > MAX_INDEX_ELEMENTS:
            raise ShapeError(f"indexing makes {numel(out)} elements (allowed: at most {MAX_INDEX_ELEMENTS})")
        return out

    def _index_tex(self, shape, params, letters):
        """Return x's index for the output element with these letters, and the letters of the broadcast dims."""
        items, wide, order = self.layout(shape, params)
        of_x = {i: letters[p] for p, (kind, i) in enumerate(order) if kind == "x"}
        of_b = [letters[p] for p, (kind, _) in enumerate(order) if kind == "b"]
        index = []
        for d, it in enumerate(items):
            if it[0] == "all":
                index.append(of_x[d])
            elif it[0] == "at":
                index.append(str(it[1] % shape[d]))
            else:
                own = aligned(it[1], of_b, wide)
                index.append("".join(own) if it[4] else el(it[3], own))
        return index, of_b

    def forward_tex(self, out, args, out_shape, params):
        letters = list(LETTERS[: len(out_shape)])
        index, _ = self._index_tex(args[0].shape, params, letters)
        return rf"{el(out, letters)} = {el(args[0].tex, index)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        shape = args[0].shape
        own = list(LETTERS[: len(shape)])
        items, wide, order = self.layout(shape, params)
        fresh = iter(free(own, len(wide)))
        letters = [own[i] if kind == "x" else next(fresh) for kind, i in order]
        index, of_b = self._index_tex(shape, params, letters)
        tests = [rf"\left[{i} = {c}\right]" for i, c, it in zip(index, own, items) if it[0] != "all"]
        return summed(of_b, times(up(el(out, letters)), " ".join(tests)))

    def latex(self, ts, params):
        shown = [":" if it[0] == "all" else str(it[1]) if it[0] == "at" else it[3] for it in params["items"]]
        return rf"{ts[0]}\left[{', '.join(shown)}\right]"

    def run(self, torch, ts, params):
        key = tuple(slice(None) if it[0] == "all" else it[1] if it[0] == "at"
                    else torch.tensor(it[2], dtype=torch.int64).reshape(it[1]) for it in params["items"])
        return ts[0][key]

    def grad_fn(self, consts, shapes, params):
        return "IndexBackward0"


def piece(walk, call: ast.AST, index: ast.AST, *, top: bool):
    """Read x.split(size, dim)[i], x.split([sizes], dim)[i] or x.chunk(n, dim)[i] as that piece, or None for another call."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in ("split", "chunk")):
        return None
    name, args = call.func.attr, list(call.args)
    if dotted_name(call.func.value) == "torch":
        if not args:
            raise ExprError(f"torch.{name}() needs a tensor argument (allowed: torch.{name}(x, 2)[0])")
        subject = args.pop(0)
    else:
        subject = call.func.value
    if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in call.keywords):
        raise ExprError("* and ** arguments are not allowed (allowed: plain arguments)")
    first = "chunks" if name == "chunk" else "split_size_or_sections"
    bound = bind_args(name, args, {k.arg: k.value for k in call.keywords}, (first, "dim"), required=(first,))
    x = walk.tensor(subject, f"{name}'s operand")
    shape = walk.shape_of(x)
    if not shape:
        raise ExprError(f"{name}() of a 0-d tensor, which has no dim to split (allowed: tensors with a dim)")
    dim = int_arg(bound.get("dim"), "dim") or 0
    try:
        size = shape[norm_dim(dim, len(shape))]
    except ShapeError as e:
        raise ExprError(str(e)) from None
    how = bound[first]
    if isinstance(how, (ast.List, ast.Tuple)):
        sections = tuple(int_index(n) for n in how.elts)
        if sum(sections) != size or any(n < 1 for n in sections):
            raise ExprError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at"
                            f" dimension {dim}), but got split_sizes={list(sections)} (allowed: positive sizes that sum"
                            f" to {size}; derive does not follow empty pieces)")
    else:
        count = int_arg(how, first)
        if count < 1:
            raise ExprError(f"{name}() needs {'chunks' if name == 'chunk' else 'split_size'} of at least 1, got {count}"
                            " (allowed: 1, 2, ...)")
        step = -(-size // count) if name == "chunk" else count
        sections = tuple(min(step, size - start) for start in range(0, size, step))
    try:
        i = int_index(index)
    except ExprError:
        raise ExprError(f"{name}() returns a tuple of tensors: take one by an integer (allowed: x.{name}(...)[0])") from None
    if not -len(sections) <= i < len(sections):
        raise ExprError(f"{name}() makes {len(sections)} piece(s) here, so [{i}] raises IndexError: tuple index out of"
                        f" range (allowed: {-len(sections)} to {len(sections) - 1})")
    i %= len(sections)
    start = sum(sections[:i])
    params = {"dim": dim, "start": start, "stop": start + sections[i], "step": 1, "how": name,
              "size": sections if isinstance(how, (ast.List, ast.Tuple)) else count, "piece": i}
    return walk.make("split", [x], params, top=top)


@dataclass(frozen=True)
class Piece(Slice):
    """x.split(2)[i] or x.chunk(3, dim=1)[i]: one piece along a dim, a slice that torch records as SplitBackward0."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        raise ExprError(f"{name}() returns a tuple of tensors (allowed: one of them, x.{name}(...)[0])")

    def grad_fn(self, consts, shapes, params):
        return "SplitWithSizesBackward0" if isinstance(params["size"], tuple) else "SplitBackward0"

    def run(self, torch, ts, params):
        size = list(params["size"]) if isinstance(params["size"], tuple) else params["size"]
        return getattr(torch, params["how"])(ts[0], size, dim=params["dim"])[params["piece"]]


INDEXING = [
    Select("select", "indexing", "SelectBackward0", Spelling(subscript=True), saves=False),
    # a slice may leave its elements apart in memory, where torch's view() raises: as for a transpose, refused
    Slice("slice", "indexing", "SliceBackward0", Spelling(), saves=False, permutes=True),
    Gather("index", "indexing", "IndexBackward0", Spelling(), permutes=False),
    Piece("split", "indexing", "SplitBackward0", Spelling(names=("split", "chunk")), saves=False, permutes=True),
    View("view", "reshaping", "ViewBackward0", Spelling(names=("view", "reshape")), saves=False),
    Reshaped("unsqueeze", "reshaping", "UnsqueezeBackward0", Spelling(names=("unsqueeze",)), saves=False,
             defaults=(("dim", None),), needs=("dim",)),
    Reshaped("squeeze", "reshaping", "SqueezeBackward0", Spelling(names=("squeeze",)), saves=False,
             defaults=(("dim", None),)),
    Reshaped("flatten", "reshaping", "ViewBackward0", Spelling(names=("flatten",)), saves=False,
             defaults=(("start_dim", 0), ("end_dim", -1)), row_major=True),
]
