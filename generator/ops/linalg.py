"""Linear algebra: a @ b for vectors and matrices, and x.T."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..floats import fmath
from ..floats.numeric import active_rounding, summation_order
from .base import (
    LETTERS, ExprError, Op, Shape, ShapeError, Spelling, aligned, bind_args, broadcast, checked, int_arg, int_index, el, flat,
    fmt_shape, free, numel, source_index, summed, sum_tex, times, unravel,
)

@functools.lru_cache(maxsize=4)
def _grid(rows: int, inner: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return, for every product of a (rows × inner) @ (inner × cols), its output, a and b flat indices."""
    out = np.repeat(np.arange(rows * cols), inner)
    left = (np.arange(rows)[:, None, None] * inner + np.arange(inner)[None, None, :]).repeat(cols, axis=1).reshape(-1)
    right = np.tile((np.arange(inner)[None, :] * cols + np.arange(cols)[:, None]).reshape(-1), rows)
    for array in (out, left, right):
        array.flags.writeable = False  # shared by every call with these sizes
    return out, left, right


@dataclass(frozen=True)
class Matmul(Op):
    """a @ b for 1-d and 2-d operands, as torch.matmul."""

    kernel_order = True  # BLAS adds the products

    def shape(self, shapes, params):
        a, b = shapes
        if not a or not b or len(a) > 2 or len(b) > 2:
            raise ShapeError(
                f"@ needs 1-d or 2-d operands, got {fmt_shape(a)} and {fmt_shape(b)} (allowed: vectors and matrices)"
            )
        if a[-1] != b[0]:
            raise ShapeError(
                f"@ cannot multiply {fmt_shape(a)} by {fmt_shape(b)}: {a[-1]} != {b[0]}"
                " (allowed: the inner sizes equal)"
            )
        checked(numel(a[:-1] + b[1:]) * a[-1], f"{fmt_shape(a)} @ {fmt_shape(b)}")
        return a[:-1] + b[1:]

    def _terms(self, shapes):
        """Yield (out index, a index, b index) for every product in the sums."""
        a, b = shapes
        rows = a[0] if len(a) == 2 else 1
        inner = a[-1]
        cols = b[1] if len(b) == 2 else 1
        for i in range(rows):
            for j in range(cols):
                for k in range(inner):
                    yield i * cols + j, i * inner + k, k * cols + j

    def forward(self, xs, shapes, params):
        out_shape = Matmul.shape(self, shapes, params)
        total: list[list[sp.Expr]] = [[] for _ in range(max(numel(out_shape), 1))]
        for o, i, j in self._terms(shapes):
            total[o].append(xs[0][i] * xs[1][j])
        return [sp.Add(*t) for t in total]

    def partials(self, xs, outs, shapes, params):
        for o, i, j in self._terms(shapes):
            yield o, 0, i, xs[1][j]
            yield o, 1, j, xs[0][i]

    def _grid(self, shapes):
        a, b = shapes
        return _grid((a[0] if len(a) == 2 else 1), a[-1], (b[1] if len(b) == 2 else 1))

    def array_forward(self, xs, shapes, params):
        return fmath.matmul(xs[0], xs[1], active_rounding(), summation_order(shapes[0][-1]))

    @staticmethod
    def _roles(shapes: list[Shape], given: dict[str, str]) -> dict[str, str]:
        """Name the row (r), inner (n) and column (c) letters, keeping those given."""
        rest = iter(free(list(given.values()), 3))
        return {role: given.get(role) or next(rest) for role in "rnc"}

    @staticmethod
    def _indices(shapes: list[Shape], role: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
        a, b = shapes
        ia = [role["r"], role["n"]] if len(a) == 2 else [role["n"]]
        ib = [role["n"], role["c"]] if len(b) == 2 else [role["n"]]
        io = ([role["r"]] if len(a) == 2 else []) + ([role["c"]] if len(b) == 2 else [])
        return ia, ib, io

    def forward_tex(self, out, args, out_shape, params):
        shapes = [x.shape for x in args]
        given = dict(zip("rc", LETTERS)) if len(shapes[0]) == 2 else {"c": "i"}
        ia, ib, io = self._indices(shapes, self._roles(shapes, given))
        inner = ia[-1]
        return rf"{el(out, io)} = \sum_{{{inner}}} {el(args[0].tex, ia)} {el(args[1].tex, ib)}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        shapes = [x.shape for x in args]
        own = dict(zip("rn" if len(shapes[0]) == 2 else "n", LETTERS)) if a == 0 else dict(
            zip("nc" if len(shapes[1]) == 2 else "n", LETTERS))
        role = self._roles(shapes, own)
        ia, ib, io = self._indices(shapes, role)
        other = el(args[1].tex, ib) if a == 0 else el(args[0].tex, ia)
        free_role = "c" if a == 0 else "r"
        over = [role[free_role]] if role[free_role] in io else []
        return summed(over, times(up(el(out, io)), other))

    def array_local(self, xs, out, shapes, params):
        o, ia, jb = self._grid(shapes)
        return [(0, o, ia, flat(xs[1])[jb], None), (1, o, jb, flat(xs[0])[ia], None)]

    def forward_numbers(self, k, xs, shapes, params, number):
        a, b = shapes
        inner, cols = a[-1], (b[1] if len(b) == 2 else 1)
        i, j = divmod(k, cols)
        return sum_tex([rf"{number(float(xs[0][i * inner + m]))} \cdot {number(float(xs[1][m * cols + j]))}"
                        for m in range(inner)])

    def grad_fn(self, consts, shapes, params):
        a, b = (len(s) for s in shapes)
        return {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (2, 2): "MmBackward0"}.get((a, b), "SqueezeBackward4")

    def edges(self, consts, shapes, params):
        # a vector times a matrix is unsqueeze, mm and squeeze to torch: nodes the graph does not have
        return None if self.grad_fn(consts, shapes, params) == "SqueezeBackward4" else (0, 1)

    def latex(self, ts, params):
        return rf"{ts[0]} {ts[1]}"

    def product_form(self, a, shapes):
        # dL/dA = G Bᵀ and dL/dB = Aᵀ G; with a vector, a column times a row (an outer product) or a matrix times a column
        return {
            (2, 2): (((None, "as is"), (1, "transposed")), ((0, "transposed"), (None, "as is"))),
            (2, 1): (((None, "col"), (1, "row")), ((0, "transposed"), (None, "col"))),
            (1, 2): (((1, "as is"), (None, "col")), ((0, "col"), (None, "row"))),
        }.get(tuple(len(s) for s in shapes), (None, None))[a]

    def run(self, torch, ts, params):
        return ts[0] @ ts[1]

    def call(self, walk, name, subject, args, kwargs, *, top):
        other = bind_args(name, args, kwargs, ("other",), required=("other",))["other"]
        operands = [walk.tensor(subject, f"{name}'s operand"), walk.tensor(other, f"{name}'s operand")]
        return walk.make(self.key, operands, top=top)

    def operate(self, walk, operands, *, top):
        if not any(isinstance(x, str) for x in operands):
            return walk.fold(self, operands)
        if not all(isinstance(x, str) for x in operands):
            raise ExprError("@ needs two tensors (allowed: tensor @ tensor)")
        return walk.make(self.key, operands, top=top)


@dataclass(frozen=True)
class Dot(Matmul):
    """torch.dot(a, b): the sum of the products of two vectors' elements."""

    def shape(self, shapes, params):
        if [len(s) for s in shapes] != [1, 1]:
            raise ShapeError(f"dot needs two 1-d tensors, got {fmt_shape(shapes[0])} and {fmt_shape(shapes[1])}"
                             " (allowed: vectors of one length)")
        return super().shape(shapes, params)

    def grad_fn(self, consts, shapes, params):
        return "DotBackward0"

    def latex(self, ts, params):
        return rf"{ts[0]} \cdot {ts[1]}"

    def run(self, torch, ts, params):
        return torch.dot(ts[0], ts[1])

    def operate(self, walk, operands, *, top):
        raise ExprError("dot is a function (allowed: torch.dot(a, b), a.dot(b))")


@dataclass(frozen=True)
class Mm(Matmul):
    """torch.mm(a, b): the product of two matrices."""

    def shape(self, shapes, params):
        if [len(s) for s in shapes] != [2, 2]:
            raise ShapeError(f"mm needs two 2-d tensors, got {fmt_shape(shapes[0])} and {fmt_shape(shapes[1])}"
                             " (allowed: matrices, the inner sizes equal)")
        return super().shape(shapes, params)

    def grad_fn(self, consts, shapes, params):
        return "MmBackward0"

    def run(self, torch, ts, params):
        return torch.mm(ts[0], ts[1])

    def operate(self, walk, operands, *, top):
        raise ExprError("mm is a function (allowed: torch.mm(a, b), a.mm(b))")


@dataclass(frozen=True)
class Mv(Matmul):
    """torch.mv(a, v): a matrix times a vector."""

    def shape(self, shapes, params):
        if [len(s) for s in shapes] != [2, 1]:
            raise ShapeError(f"mv needs a 2-d and a 1-d tensor, got {fmt_shape(shapes[0])} and {fmt_shape(shapes[1])}"
                             " (allowed: a matrix and a vector, the inner sizes equal)")
        return super().shape(shapes, params)

    def grad_fn(self, consts, shapes, params):
        return "MvBackward0"

    def run(self, torch, ts, params):
        return torch.mv(ts[0], ts[1])

    def operate(self, walk, operands, *, top):
        raise ExprError("mv is a function (allowed: torch.mv(a, v), a.mv(v))")


@dataclass(frozen=True)
class Bmm(Op):
    """torch.bmm(a, b): a batch of matrix products, a[n] @ b[n] for each n."""

    kernel_order = True  # BLAS adds the products

    def call(self, walk, name, subject, args, kwargs, *, top):
        other = bind_args(name, args, kwargs, ("mat2",), required=("mat2",))["mat2"]
        operands = [walk.tensor(subject, f"{name}'s operand"), walk.tensor(other, f"{name}'s operand")]
        return walk.make(self.key, operands, top=top)

    def shape(self, shapes, params):
        a, b = shapes
        if len(a) != 3 or len(b) != 3 or a[0] != b[0] or a[2] != b[1]:
            raise ShapeError(f"bmm cannot multiply {fmt_shape(a)} by {fmt_shape(b)} (allowed: 3-d tensors [n, r, k] and"
                             " [n, k, c], the same n and k)")
        checked(a[0] * a[1] * b[2] * a[2], f"bmm of {fmt_shape(a)} and {fmt_shape(b)}")
        return (a[0], a[1], b[2])

    def _grid(self, shapes):
        """Return, per product in the sums, its output index and the two operands' indices (flat)."""
        (n, r, k), (_, _, c) = shapes
        m, i, j, q = (g.reshape(-1) for g in np.indices((n, r, c, k)))
        return m * r * c + i * c + j, m * r * k + i * k + q, m * k * c + q * c + j

    def forward(self, xs, shapes, params):
        out, ia, ib = self._grid(shapes)
        total: list[list[sp.Expr]] = [[] for _ in range(numel(self.shape(shapes, params)))]
        for o, a, b in zip(out.tolist(), ia.tolist(), ib.tolist()):
            total[o].append(xs[0][a] * xs[1][b])
        return [sp.Add(*t) for t in total]

    def partials(self, xs, outs, shapes, params):
        out, ia, ib = self._grid(shapes)
        for o, a, b in zip(out.tolist(), ia.tolist(), ib.tolist()):
            yield o, 0, a, xs[1][b]
            yield o, 1, b, xs[0][a]

    def array_forward(self, xs, shapes, params):
        a = np.asarray(xs[0], dtype=np.float64).reshape(shapes[0])
        b = np.asarray(xs[1], dtype=np.float64).reshape(shapes[1])
        return np.stack([fmath.matmul(a[m], b[m], active_rounding(), summation_order(shapes[0][-1]))
                         for m in range(shapes[0][0])])

    def array_local(self, xs, out, shapes, params):
        o, ia, ib = self._grid(shapes)
        return [(0, o, ia, flat(xs[1])[ib], None), (1, o, ib, flat(xs[0])[ia], None)]

    def forward_numbers(self, k, xs, shapes, params, number):
        out, ia, ib = self._grid(shapes)
        return sum_tex([rf"{number(float(xs[0][a]))} \cdot {number(float(xs[1][b]))}"
                        for o, a, b in zip(out.tolist(), ia.tolist(), ib.tolist()) if o == k])

    def forward_tex(self, out, args, out_shape, params):
        return rf"{el(out, 'nij')} = \sum_{{k}} {el(args[0].tex, 'nik')} {el(args[1].tex, 'nkj')}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        if a == 0:  # operand 0's element a_{ijk}: batch i, row j, inner k
            return summed(["l"], times(up(el(out, "ijl")), el(args[1].tex, "ikl")))
        return summed(["l"], times(up(el(out, "ilk")), el(args[0].tex, "ilj")))

    def latex(self, ts, params):
        return rf"\operatorname{{bmm}}\left({ts[0]}, {ts[1]}\right)"

    def run(self, torch, ts, params):
        return torch.bmm(ts[0], ts[1])


@dataclass(frozen=True)
class Addmm(Matmul):
    """torch.addmm(bias, a, b): bias + a @ b for matrices, in one kernel (F.linear's, with a bias)."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("mat1", "mat2"), required=("mat1", "mat2"))
        operands = [walk.tensor(subject, f"{name}'s input"), walk.tensor(bound["mat1"], f"{name}'s mat1"),
                    walk.tensor(bound["mat2"], f"{name}'s mat2")]
        return walk.make(self.key, operands, top=top)

    def operate(self, walk, operands, *, top):
        raise ExprError("addmm is a function (allowed: torch.addmm(bias, a, b))")

    def shape(self, shapes, params):
        if [len(s) for s in shapes[1:]] != [2, 2]:
            raise ShapeError(f"addmm needs two 2-d tensors after the bias, got {fmt_shape(shapes[1])} and"
                             f" {fmt_shape(shapes[2])} (allowed: matrices, the inner sizes equal)")
        out = super().shape(shapes[1:], params)
        if len(shapes[0]) > 2 or broadcast(shapes[0], out) != out:
            raise ShapeError(f"addmm's bias {fmt_shape(shapes[0])} does not broadcast to the product's"
                             f" {fmt_shape(out)} (allowed: sizes equal or 1, compared from the right)")
        return out

    def _bias(self, shapes) -> np.ndarray:
        out = super().shape(shapes[1:], {})
        return np.array([source_index(unravel(k, out), shapes[0]) for k in range(numel(out))], dtype=np.int64)

    def forward(self, xs, shapes, params):
        products = super().forward(xs[1:], shapes[1:], params)
        return [xs[0][j] + p for j, p in zip(self._bias(shapes).tolist(), products)]

    def partials(self, xs, outs, shapes, params):
        for k, j in enumerate(self._bias(shapes).tolist()):
            yield k, 0, j, sp.Integer(1)
        for o, a, j, d in super().partials(xs[1:], outs, shapes[1:], params):
            yield o, a + 1, j, d

    def array_forward(self, xs, shapes, params):
        return flat(xs[0])[self._bias(shapes)].reshape(self.shape(shapes, params)) + super().array_forward(
            xs[1:], shapes[1:], params)

    def dtype_rounding(self, xs, out, shapes, params, *, normal=0.0):
        # the kernel adds the bias inside its sums, in an order of its own
        return np.abs(flat(xs[0])[self._bias(shapes)]) + (np.abs(xs[1]) @ np.abs(xs[2])).reshape(-1)

    def array_local(self, xs, out, shapes, params):
        sources = self._bias(shapes)
        found = [(0, np.arange(sources.size), sources, np.ones(sources.size), None)]
        return found + [(a + 1, o, j, v, m) for a, o, j, v, m in super().array_local(xs[1:], out, shapes[1:], params)]

    def forward_numbers(self, k, xs, shapes, params, number):
        bias = number(float(flat(xs[0])[self._bias(shapes)[k]]))
        return f"{bias} + {super().forward_numbers(k, xs[1:], shapes[1:], params, number)}"

    def forward_tex(self, out, args, out_shape, params):
        product = super().forward_tex(out, args[1:], out_shape, params)
        left, right = product.split(" = ", 1)
        return f"{left} = {el(args[0].tex, aligned(args[0].shape, list(LETTERS[:2]), out_shape))} + {right}"

    def backward_tex(self, a, args, out, out_shape, params, up):
        if a > 0:
            return super().backward_tex(a - 1, args[1:], out, out_shape, params, up)
        own = list(LETTERS[: len(args[0].shape)])
        extra = iter(free(own, 2))
        letters = [next(extra) for _ in range(2 - len(own))]
        letters += [c if n == m else next(extra) for c, n, m in zip(own, args[0].shape, out_shape[2 - len(own):])]
        return summed([c for c in letters if c not in own], up(el(out, letters)))

    def product_form(self, a, shapes):
        factors = None if a == 0 else super().product_form(a - 1, shapes[1:])
        return None if factors is None else tuple((None if i is None else i + 1, layout) for i, layout in factors)

    def grad_fn(self, consts, shapes, params):
        return "AddmmBackward0"

    def edges(self, consts, shapes, params):
        return tuple(i for i, const in enumerate(consts) if not const)

    def latex(self, ts, params):
        return rf"{ts[0]} + {ts[1]} {ts[2]}"

    def run(self, torch, ts, params):
        return torch.addmm(ts[0], ts[1], ts[2])


@dataclass(frozen=True)
class Linear(Op):
    """torch.nn.functional.linear(x, weight, bias): x @ weight.T + bias, as the nodes torch records for it.

    A matrix input is addmm(bias, x, weight.t()) (mm without a bias); a vector is viewed as one row
    first and back after (matmul without a bias). It never is a node itself.
    """

    def call(self, walk, name, subject, args, kwargs, *, top):
        bound = bind_args(name, args, kwargs, ("weight", "bias"), required=("weight",))
        x, weight = walk.tensor(subject, f"{name}'s input"), walk.tensor(bound["weight"], f"{name}'s weight")
        bias = None if "bias" not in bound or _is_none(bound["bias"]) else walk.tensor(bound["bias"], f"{name}'s bias")
        rank, w = len(walk.shape_of(x)), walk.shape_of(weight)
        if rank not in (1, 2) or len(w) != 2:
            raise ExprError(f"{name}() takes a 1-d or 2-d input and a 2-d weight here, got {fmt_shape(walk.shape_of(x))}"
                            f" and {fmt_shape(w)} (allowed: x of [n, in] or [in], weight of [out, in])")
        transposed = walk.make("transpose", [weight], {"how": "t"}, top=False)
        if bias is None:
            return walk.make("mm" if rank == 2 else "matmul", [x, transposed], top=top)
        if rank == 2:
            return walk.make("addmm", [bias, x, transposed], top=top)
        row = walk.make("view", [x], {"sizes": (1, -1), "name": "view"}, top=False)
        product = walk.make("addmm", [bias, row, transposed], top=False)
        return walk.make("view", [product], {"sizes": (-1,), "name": "view"}, top=top)


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


# how a 2-d tensor was transposed: torch records each spelling as its own op
TRANSPOSED = {"T": "PermuteBackward0", "t": "TBackward0", "transpose": "TransposeBackward0", "permute": "PermuteBackward0"}


@dataclass(frozen=True)
class Transpose(Op):
    """x.T, x.t(), x.transpose(0, 1) or x.permute(1, 0) for a 2-d tensor."""

    def call(self, walk, name, subject, args, kwargs, *, top):
        if name == "t":
            bind_args(name, args, kwargs, ())
        elif name == "transpose":
            bound = bind_args(name, args, kwargs, ("dim0", "dim1"), required=("dim0", "dim1"))
            dims = {int_arg(bound["dim0"], "dim0"), int_arg(bound["dim1"], "dim1")}
            if dims not in ({0, 1}, {0, -1}, {-2, 1}, {-2, -1}):
                raise ExprError(f"{name}() swaps the two dims of a matrix here (allowed: x.transpose(0, 1))")
        else:
            sizes = args[0].elts if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)) else args
            if kwargs or [int_index(a) % 2 for a in sizes] != [1, 0]:
                raise ExprError(f"{name}() reverses the two dims of a matrix here (allowed: x.permute(1, 0))")
        return walk.make(self.key, [walk.tensor(subject, f"{name}'s operand")], {"how": name}, top=top)

    def grad_fn(self, consts, shapes, params):
        return TRANSPOSED[params.get("how", "T")]

    def shape(self, shapes, params):
        if len(shapes[0]) != 2:
            raise ShapeError(f".T needs a 2-d tensor, got {fmt_shape(shapes[0])} (allowed: matrices)")
        return shapes[0][::-1]

    def forward(self, xs, shapes, params):
        rows, cols = shapes[0]
        return [xs[0][i * cols + j] for j in range(cols) for i in range(rows)]

    def partials(self, xs, outs, shapes, params):
        rows, cols = shapes[0]
        for k, (j, i) in enumerate((j, i) for j in range(cols) for i in range(rows)):
            yield k, 0, i * cols + j, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        return xs[0].T.copy()

    def array_local(self, xs, out, shapes, params):
        sources = np.arange(xs[0].size).reshape(shapes[0]).T.reshape(-1)
        return [(0, np.arange(sources.size), sources, np.ones(sources.size), None)]

    def forward_tex(self, out, args, out_shape, params):
        return rf"{el(out, 'ij')} = {el(args[0].tex, 'ji')}"

    def forward_numbers(self, k, xs, shapes, params, number):
        i, j = divmod(k, shapes[0][0])
        return number(float(xs[0][j * shapes[0][1] + i]))

    def backward_tex(self, a, args, out, out_shape, params, up):
        return up(el(out, "ji"))

    def latex(self, ts, params):
        return rf"{ts[0]}^{{\mathsf T}}"

    def run(self, torch, ts, params):
        how = params.get("how", "T")
        return ts[0].T if how == "T" else ts[0].t() if how == "t" else ts[0].transpose(0, 1) if how == "transpose" \
            else ts[0].permute(1, 0)


LINALG = [
    Matmul("matmul", "sum and product rules", "MmBackward0", Spelling(names=("matmul",), operator=ast.MatMult, symbol="@")),
    Dot("dot", "sum and product rules", "DotBackward0", Spelling(names=("dot",))),
    Mm("mm", "sum and product rules", "MmBackward0", Spelling(names=("mm",))),
    Mv("mv", "sum and product rules", "MvBackward0", Spelling(names=("mv",))),
    Transpose("transpose", "transpose", "PermuteBackward0", Spelling(names=("t", "transpose", "permute"), attribute="T"),
              saves=False,
              permutes=True),
    Addmm("addmm", "sum and product rules", "AddmmBackward0", Spelling(names=("addmm",))),
    Bmm("bmm", "sum and product rules", "BmmBackward0", Spelling(names=("bmm",))),
    Linear("linear", "sum and product rules", "", Spelling(functional=("linear",)), composite=True),
]


def linear(x: ast.expr, weight: str, bias: str) -> ast.expr:
    """Return nn.Linear's forward, x @ weight.T + bias (bias '' for none).

    torch's addmm (a 2-d input) and matmul then add (1-d) round the product, then the sum, as @ and + do.
    """
    out: ast.expr = ast.BinOp(x, ast.MatMult(), ast.Attribute(ast.Name(weight, ast.Load()), "T", ast.Load()))
    return ast.BinOp(out, ast.Add(), ast.Name(bias, ast.Load())) if bias else out


def is_linear(expr: ast.expr, weights: set[str]) -> bool:
    """Tell whether an expression is nn.Linear's forward as linear() writes it, of one of these weights."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        expr = expr.left
    return (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.MatMult) and isinstance(expr.right, ast.Attribute)
            and isinstance(expr.right.value, ast.Name) and expr.right.value.id in weights)
