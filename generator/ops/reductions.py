"""Reductions: sum, mean, norm, max, min, over all elements or along a dim."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import sympy as sp

from .base import (
    LETTERS, MAX_TERMS, OPERAND, OUT, Arg, ExprError, Op, Shape, ShapeError, Spelling, TexOperand, Walk, bare, bind_args,
    bool_arg, dotted_name, el,
    checked, flat, free, int_arg, norm_dim, numel, ravel,
    list_tex, sum_tex, sum_tex_of, summed, times, unravel,
)
from ..floats import fmath
from ..floats.ieee import number
from ..floats.numeric import active_rounding
from .derivatives import Extremal, FirstShare, NormShare, Others, Printer, TieShare

STABLE_SHIFT = 700  # logsumexp is written shifted by a group's maximum when that is larger in size (e^709 ≈ 8e307)


def reduce_groups(shape: Shape, dim: int | None, keepdim: bool) -> tuple[Shape, list[list[int]]]:
    """Return the output shape and, per output element, the input indices it reduces."""
    if dim is None:
        return ((1,) * len(shape) if keepdim else ()), [list(range(numel(shape)))]
    d = norm_dim(dim, len(shape))
    if not shape:
        return (), [[0]]
    out_shape = tuple(1 if i == d else n for i, n in enumerate(shape))
    groups = []
    for k in range(numel(out_shape)):
        idx = list(unravel(k, out_shape))
        members = []
        for m in range(shape[d]):
            idx[d] = m
            members.append(ravel(tuple(idx), shape))
        groups.append(members)
    if not keepdim:
        out_shape = tuple(n for i, n in enumerate(shape) if i != d)
    return out_shape, groups


def _integer_literal(node: ast.AST) -> bool:
    """Tell whether an argument is written as an integer (a dim), not a tensor."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


@dataclass(frozen=True)
class Reduction(Op):
    """sum, mean, norm, max, min: one output element per group of inputs."""

    # each of these four also takes the op's parameters, last
    combine: Callable[[list[sp.Expr], dict], sp.Expr] = field(default=None, repr=False)
    d: Callable[[sp.Expr, list[sp.Expr], sp.Expr, dict], sp.Expr] = field(default=None, repr=False)
    tex: Callable[..., str] = field(default=None, repr=False)
    method: str = ""
    dims: bool = False  # accepts dim= and keepdim=
    kink_at: Callable[[list[sp.Expr], sp.Expr], str | None] = field(default=None, repr=False)
    array_combine: Callable[[np.ndarray, dict], np.ndarray] = field(default=None, repr=False)  # rows of members -> outputs
    array_d: Callable[[np.ndarray, np.ndarray, dict], np.ndarray] = field(default=None, repr=False)  # d out / d member, on rows
    # in a dtype, given (cast, operand, groups, output shape), where torch does not compute as array_combine
    in_dtype: Callable[..., np.ndarray] | None = field(default=None, repr=False)
    extreme: bool = False  # max or min: one element's value, its derivative shared among tied extremes
    same_local: bool = False  # every member's local derivative is the same number
    divides: bool = False  # torch's backward divides the gradient by the group's size (mean), not multiplies by 1/n
    pairwise: str = ""  # the op that torch.max(a, b) and a.max(b) of two tensors are (maximum)
    numbered: bool = True  # along a dim, torch's grad_fn is ...Backward1 (sum, mean, prod)
    needs_dim: bool = False  # logsumexp: torch has no form over all elements
    spread: bool = False  # var and std: they take unbiased= or correction=
    rounds: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, repr=False)  # see dtype_rounding
    masks_zero: bool = False  # torch's backward masks a group whose output is 0 (std): nan or inf upstream stops there
    tie_key: str = "tie"  # the note at tied extremes
    first: bool = False  # max(dim), min(dim): d is given the members before the element, not all of them
    two_norm: bool = False  # norm: takes p= first, which must be the 2-norm (p=2 or 'fro')
    scalar_passes: bool = False  # prod: torch passes a 0-d input's gradient on as it is (inf / inf is never taken)
    # rows of members -> where torch's backward writes zeros without taking the gradient (nan or inf stop there)
    array_masked: Callable[[np.ndarray, dict], np.ndarray] | None = field(default=None, repr=False)

    kink_of_group = True

    def array_fraction(self, a, xs, out, shapes, params):
        if not self.divides:
            return None
        _, groups = self._index(shapes[0], params)
        size = np.asarray(out).size
        return np.ones(size), np.full(size, float(groups.shape[1]))

    @property
    def local_from_ties(self):
        return self.extreme

    def call(self, walk, name, subject, args, kwargs, *, top):
        other = args[0] if len(args) == 1 and not kwargs else kwargs["other"] if not args and set(kwargs) == {"other"} else None
        if self.pairwise and other is not None and not _integer_literal(other):
            a = walk.tensor(subject, f"{name}'s operand")
            return walk.make(self.pairwise, [a, walk.tensor(other, f"{name}'s other operand")], top=top)
        return super().call(walk, name, subject, args, kwargs, top=top)

    def call_params(self, walk, name, args, kwargs):
        if self.extreme and not self.dims and (args or kwargs):
            raise ExprError(f"{name}(dim) returns values and indices (allowed: x.{name}(dim).values, x.{name}(dim)[0],"
                            f" or x.{name}() over all elements)")
        if not self.dims:
            return super().call_params(walk, name, args, kwargs)
        if self.spread:
            return _spread_params(name, args, kwargs)
        if self.two_norm:
            bound = bind_args(name, args, kwargs, ("p", "dim", "keepdim"))
            p = bound.get("p")
            if p is not None and not (isinstance(p, ast.Constant) and p.value in (2, "fro") and type(p.value) is not bool):
                raise ExprError(f"{name}() computes the 2-norm here (allowed: p=2 or p='fro', or no p)")
            return {"dim": int_arg(bound.get("dim"), "dim"), "keepdim": bool_arg(bound.get("keepdim"), "keepdim")}
        bound = bind_args(name, args, kwargs, ("dim", "keepdim"), required=("dim",) if self.needs_dim else ())
        return {"dim": int_arg(bound.get("dim"), "dim"), "keepdim": bool_arg(bound.get("keepdim"), "keepdim")}

    def dtype_rounding(self, xs, out, shapes, params, *, normal=0.0):
        if self._squares_a_scalar(shapes, params):
            # x · x, rounded, then its root: a subnormal square (2e-160 squared) is rounded by a unit of the smallest
            # normal, which the root moves by that over 2|x| (sqrt of 4e-320 is 2.0000111e-160)
            x = np.abs(np.asarray(xs[0], dtype=np.float64)).reshape(-1)
            with np.errstate(all="ignore"):
                return np.where(x == 0, 0.0, (x * x + normal) / (2 * x))
        if self.rounds is None:
            return 0.0
        _, groups = self._index(shapes[0], params)
        return self.rounds(flat(xs[0])[groups], flat(out))

    def _squares_a_scalar(self, shapes, params) -> bool:
        """Tell whether torch takes this norm as sqrt(x · x): of a 0-d tensor along dim 0, where x · x may leave the
        dtype's range (without dim, or of one element of a 1-d tensor, it is abs(x))."""
        return self.two_norm and not shapes[0] and params.get("dim") is not None

    def dtype_forward(self, cast, xs, shapes, params):
        if self._squares_a_scalar(shapes, params):
            with np.errstate(over="ignore", under="ignore"):
                return np.sqrt(cast(np.square(np.asarray(xs[0], dtype=np.float64))))
        if self.spread:
            return self._spread_in_dtype(cast, xs, shapes, params)
        if self.in_dtype is None:
            return self.array_forward(xs, shapes, params)
        out_shape, groups = self._index(shapes[0], params)
        return self.in_dtype(cast, xs[0], groups, out_shape)

    def _spread_in_dtype(self, cast, xs, shapes, params):
        """Return var or std as torch computes them in the dtype. Into one element, torch first sums the mean there
        (measured: a (2, n) tensor's var along dim 1 goes by Welford in double instead), so a sum past the range makes
        the mean inf, each x - mean infinite, and the variance inf (or nan), where float64 would give 0."""
        out = np.asarray(self.array_forward(xs, shapes, params), dtype=np.float64)
        out_shape, groups = self._index(shapes[0], params)
        if groups.shape[0] != 1:
            return out
        members = flat(xs[0])[groups]
        rows = np.repeat(np.arange(members.shape[0]), members.shape[1])
        with np.errstate(all="ignore"):
            mean = cast(cast.sum(rows, members.reshape(-1), members.shape[0]) / members.shape[1])
            apart = ~np.isfinite(mean) & np.isfinite(members).all(axis=1)
            if not apart.any():
                return out
            spread = ((members - mean[:, None]) ** 2).sum(axis=1) / (members.shape[1] - params["correction"])
            found = np.where(apart, spread if self.key == "var" else np.sqrt(spread), out.reshape(-1))
        return found.reshape(out_shape)

    def dtype_vjp(self, cast, upstream, out, shape, params, operands):
        """var and std as torch's var_backward computes them: (2 / dof · g) · (x - mean), g of std first
        grad / (2 · std), masked to 0 where std is 0 (so a float32 std of 4.7e-41 gives grad · inf)."""
        if not self.spread:
            return None
        x = np.asarray(operands[0], dtype=np.float64)
        _, groups = self._index(x.shape, params)
        members = x.reshape(-1)[groups]
        with np.errstate(all="ignore"):
            g, o = np.asarray(upstream, dtype=np.float64).reshape(-1), np.asarray(out, dtype=np.float64).reshape(-1)
            if self.key == "std":
                g = np.where(o == 0, 0.0, cast(g / cast(2 * o)))
            scaled = cast(cast(np.float64(2 / (members.shape[1] - params["correction"]))) * g)
            rows = cast(scaled[:, None] * cast(members - _backward_mean(members, params, cast)))
        result = np.empty(x.size)
        result[groups] = rows
        return result

    def _index(self, shape: Shape, params: dict[str, Any]) -> tuple[Shape, np.ndarray]:
        out_shape, groups = reduce_groups(shape, params.get("dim"), params.get("keepdim", False))
        return out_shape, np.array(groups, dtype=np.int64).reshape(len(groups), -1)

    def array_forward(self, xs, shapes, params):
        if self._squares_a_scalar(shapes, params):
            with np.errstate(over="ignore", under="ignore"):
                return np.sqrt(np.square(np.asarray(xs[0], dtype=np.float64)))
        out_shape, groups = self._index(shapes[0], params)
        return self.array_combine(flat(xs[0])[groups], params).reshape(out_shape)

    def array_local(self, xs, out, shapes, params):
        _, groups = self._index(shapes[0], params)
        members, outs = flat(xs[0])[groups], flat(out)[:, None]
        values = np.broadcast_to(self.array_d(members, outs, params), members.shape).reshape(-1).copy()
        if self.scalar_passes and not shapes[0]:
            values[:] = 1.0
        rows = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        masked = values == 0 if self.extreme else None  # TieShare is applied as a mask
        if self.masks_zero:
            masked = np.broadcast_to(outs == 0, members.shape).reshape(-1) & ~np.isnan(values)
        if self.array_masked is not None:
            masked = self.array_masked(members, params).reshape(-1)
        return [(0, rows, groups.reshape(-1), values, masked)]

    def _letters(self, shape: Shape, params: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
        """Return the operand's letters, the output element's index and the letters summed over."""
        own = list(LETTERS[: len(shape)])
        dim, keep = params.get("dim"), params.get("keepdim", False)
        if dim is None:
            return own, ["0"] * len(own) if keep else [], own
        d = norm_dim(dim, len(shape))
        if not shape:
            return own, [], []
        index = [("0" if keep else None) if i == d else c for i, c in enumerate(own)]
        return own, [c for c in index if c is not None], [own[d]]

    def forward_tex(self, out, args, out_shape, params):
        x = args[0]
        own, index, over = self._letters(x.shape, params)
        n = numel(x.shape) if params.get("dim") is None else (x.shape[norm_dim(params["dim"], len(x.shape))] if x.shape else 1)
        body = el(x.tex, own)
        mean = el(rf"\bar{{{x.tex}}}", index)
        dof = n - params.get("correction", 0)
        spread = ("" if dof == 1 else rf"\frac{{1}}{{{dof}}} ") + summed(over, rf"\left({body} - {mean}\right)^{{2}}")
        rhs = {
            "prod": rf"\prod_{{{','.join(over)}}} {body}" if over else body,
            "logsumexp": rf"\ln {summed(over, f'e^{{{body}}}')}",
            "var": spread,
            "std": rf"\sqrt{{{spread}}}",
            "sum": summed(over, body),
            "mean": rf"\frac{{1}}{{{n}}} " + summed(over, body),
            "norm": rf"\sqrt{{{summed(over, '{' + body + '}^{2}')}}}",
            "max": rf"\max_{{{','.join(over)}}} {body}" if over else body,
            "min": rf"\min_{{{','.join(over)}}} {body}" if over else body,
            "argmax": rf"\operatorname*{{argmax}}_{{{_tuple_tex(over)}}} {body}" if over else "0",
            "argmin": rf"\operatorname*{{argmin}}_{{{_tuple_tex(over)}}} {body}" if over else "0",
        }[self.method if self.extreme else self.key]
        return f"{el(out, index)} = {rhs}"

    def forward_numbers(self, k, xs, shapes, params, number):
        _, groups = self._index(shapes[0], params)
        values = flat(xs[0])[groups[k]]
        count = values.size
        # the members a list shows: all of a few, else the first two and the last (list_tex)
        members = [number(float(v)) for v in (values if count <= MAX_TERMS else values[[0, 1, -1]])]
        listed = list_tex(members if count <= MAX_TERMS else [*members[:2], r"\ldots", members[-1]])
        if self.extreme:
            return rf"\{self.method}\left({listed}\right)"
        if self.integer:
            return rf"\operatorname{{{self.key}}}\left({listed}\right)"
        if self.key == "norm":
            return rf"\sqrt{{{sum_tex_of(values, lambda v: f'{{{number(v)}}}^{{2}}')}}}"
        if self.key == "prod":
            return r" \cdot ".join(members) if count <= MAX_TERMS else rf"{members[0]} \cdot {members[1]} \cdots {members[-1]}"
        if self.key == "logsumexp":
            return rf"\ln\left({sum_tex_of(values, lambda v: f'e^{{{bare(number(v))}}}')}\right)"
        if self.spread:
            mean = number(float(values.mean()))
            total = sum_tex_of(values, lambda v: rf"\left({bare(number(v))} - {mean}\right)^{{2}}")
            body = rf"\frac{{1}}{{{count - params['correction']}}} \left({total}\right)"
            return body if self.key == "var" else rf"\sqrt{{{body}}}"
        total = sum_tex_of(values, number)
        return rf"\frac{{1}}{{{count}}} \left({total}\right)" if self.key == "mean" else total

    def backward_tex(self, a, args, out, out_shape, params, up):
        x = args[0]
        own, index, _ = self._letters(x.shape, params)
        n = numel(x.shape) if params.get("dim") is None else (x.shape[norm_dim(params["dim"], len(x.shape))] if x.shape else 1)
        text = self._local_tex(x, own, index, out, n, params)
        if text is None:
            a_sym = OPERAND[0]
            local = self.d(a_sym, [a_sym] * (2 if self.extreme else n), OUT, params)
            text = Printer({a_sym: el(x.tex, own), OUT: el(out, index)}).doprint(local)
        return times(up(el(out, index)), text)

    def _local_tex(self, x: TexOperand, own: list[str], index: list[str], out: str, n: int,
                   params: dict[str, Any]) -> str | None:
        """Return the generic local derivative where the scalar form of d cannot say it, else None."""
        mine, o = el(x.tex, own), el(out, index)
        if self.key == "prod":
            _, _, over = self._letters(x.shape, params)
            if not over:
                return "1"
            primed = [c + "'" if c in over else c for c in own]
            others, these = _tuple_tex([c + "'" for c in over]), _tuple_tex(over)
            return rf"\prod_{{{others} \neq {these}}} {el(x.tex, primed)}"
        if self.key == "logsumexp":
            return rf"e^{{{mine} - {o}}}"
        if self.spread:
            mean = el(rf"\bar{{{x.tex}}}", index)
            dof = n - params["correction"]
            if self.key == "var":
                two = "2" if dof == 1 else rf"\frac{{2}}{{{dof}}}"
                return rf"{two} \left({mine} - {mean}\right)"
            below = o if dof == 1 else rf"{dof} \, {o}"
            return rf"\frac{{{mine} - {mean}}}{{{below}}}"
        return None

    def array_kinks(self, xs, out, shapes, params):
        if self.kink_at is None:
            return
        _, groups = self._index(shapes[0], params)
        members, outs = flat(xs[0])[groups], flat(out)
        if self.key in ("norm", "std"):
            hits = outs == 0
        else:
            hits = (members == outs[:, None]).sum(axis=1) > 1
        if hits.any():
            yield np.flatnonzero(hits), {"norm": "norm0", "std": "std0"}.get(self.key, self.tie_key)

    def shape(self, shapes, params):
        if not self.dims and not shapes[0]:
            return ()
        out_shape, groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))
        if self.spread and len(groups[0]) <= params["correction"]:
            raise ShapeError(f"{self.key} of {len(groups[0])} element(s) with correction={params['correction']} divides by"
                             f" {len(groups[0]) - params['correction']} (allowed: a correction below the group's size,"
                             " as torch warns otherwise and returns nan or inf)")
        return out_shape

    def forward(self, xs, shapes, params):
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        return [self.combine([xs[0][j] for j in g], params) for g in groups]

    def stable_forward(self, xs, values, shapes, params):
        if self._squares_a_scalar(shapes, params):
            with np.errstate(over="ignore", under="ignore"):
                square = np.square(number(values[0][0]))
            if square == 0 or np.isinf(square):  # x · x left float64: torch's norm is 0 or inf there
                return [sp.Integer(0) if square == 0 else sp.oo]
        if self.key != "logsumexp":
            return self.forward(xs, shapes, params)
        # torch adds the exps shifted by the group's maximum: e^710 is past float64, e^(710 - 710) is not
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        out = []
        for g in groups:
            members, numbers = [xs[0][j] for j in g], [values[0][j] for j in g]
            top = max(numbers, key=number) if all(v.is_finite for v in numbers) else None
            if top is None or abs(number(top)) <= STABLE_SHIFT:
                out.append(self.combine(members, params))
                continue
            shifted = [sp.exp(sp.Add(m, -top, evaluate=False), evaluate=False) for m in members]
            out.append(sp.Add(top, sp.log(sp.Add(*shifted, evaluate=False), evaluate=False), evaluate=False))
        return out

    def partials(self, xs, outs, shapes, params):
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        for k, g in enumerate(groups):
            members = [xs[0][j] for j in g]
            for m, j in enumerate(g):
                yield k, 0, j, self.d(xs[0][j], members[:m] if self.first else members, outs[k], params)

    def grad_fn(self, consts, shapes, params):
        if params.get("dim") is not None and self.numbered:
            return self.grad_fn_name[:-1] + "1"  # SumBackward1, MeanBackward1, ProdBackward1
        return self.grad_fn_name

    def latex(self, ts, params):
        return self.tex(ts[0], params)

    def kinks(self, xs, outs, shapes, params):
        groups = reduce_groups(shapes[0], params.get("dim"), params.get("keepdim", False))[1]
        for k, g in enumerate(groups):
            key = self.kink_at([xs[0][j] for j in g], outs[k]) if self.kink_at else None
            if key:
                yield k, key

    def run(self, torch, ts, params):
        kw = {} if params.get("dim") is None and not self.spread else params
        return getattr(ts[0], self.method)(**kw)


def _tuple_tex(letters: list[str]) -> str:
    """Write index letters as one index (j) or a tuple ((i,j))."""
    return letters[0] if len(letters) == 1 else rf"\left({','.join(letters)}\right)"


def _spread_params(name: str, args: list[ast.AST], kwargs: dict[str, ast.AST]) -> dict[str, Any]:
    """Bind var's and std's arguments: (dim, unbiased, keepdim) or correction=, as torch takes them."""
    if len(args) > 3:
        raise ExprError(f"{name}() takes at most 3 arguments here, got {len(args)} (allowed: dim, unbiased, keepdim)")
    bound = bind_args(name, args, kwargs, ("dim", "unbiased", "keepdim", "correction"))
    if "unbiased" in bound and "correction" in bound:
        raise ExprError(f"{name}() got both unbiased= and correction= (allowed: one of them)")
    correction = int_arg(bound.get("correction"), "correction")
    if correction is None:
        correction = 1 if "unbiased" not in bound or bool_arg(bound["unbiased"], "unbiased") else 0
    if correction < 0:
        raise ExprError(f"correction= must not be negative, got {correction} (allowed: 0, 1, ...)")
    return {"dim": int_arg(bound.get("dim"), "dim"), "keepdim": bool_arg(bound.get("keepdim"), "keepdim"),
            "correction": correction}


def _others_product(members: np.ndarray, outs: np.ndarray, params: dict) -> np.ndarray:
    """prod' on rows of members, as torch: the product over the element when no element anywhere is 0, else the
    product of the others (the running products from the left and from the right, which no zero spoils); over all
    elements with two zeros or more, zeros (torch's prod_backward skips the products, so a nan among them is not seen)."""
    if params.get("dim") is None and (members == 0).sum() > 1:
        return np.zeros_like(members)
    if not (members == 0).any():
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return outs / members
    ones = np.ones((members.shape[0], 1))
    keep = active_rounding()  # in a dtype, each running product rounds there (and may vanish)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        left = _running_product(np.concatenate([ones, members[:, :-1]], axis=1), keep)
        right = _running_product(np.concatenate([ones, members[:, :0:-1]], axis=1), keep)[:, ::-1]
        return left * right if keep is None else keep(left * right)


def _without_gradient(members: np.ndarray, params: dict) -> np.ndarray:
    """Return where prod's backward writes zeros without the gradient: over all elements, with two zeros or more."""
    return np.full(members.shape, params.get("dim") is None and int((members == 0).sum()) > 1)


def _running_product(rows: np.ndarray, keep) -> np.ndarray:
    """Return each row's running products, rounded by keep (if any) after each multiplication."""
    if keep is None:
        return np.cumprod(rows, axis=1)
    out = np.empty_like(rows)
    out[:, 0] = rows[:, 0]
    for j in range(1, rows.shape[1]):
        out[:, j] = keep(out[:, j - 1] * rows[:, j])
    return out


def _centred(a: sp.Expr, members: list[sp.Expr]) -> sp.Expr:
    """Return a - mean(members), kept as written (a document shows the mean, not its expansion)."""
    mean = sp.Mul(sp.Rational(1, len(members)), sp.Add(*members), evaluate=False)
    return sp.Add(a, sp.Mul(-1, mean, evaluate=False), evaluate=False)


def _spread_of(members: list[sp.Expr], correction: int) -> sp.Expr:
    squares = sp.Add(*(sp.Pow(_centred(m, members), 2, evaluate=False) for m in members), evaluate=False)
    return sp.Mul(sp.Rational(1, len(members) - correction), squares, evaluate=False)


@dataclass(frozen=True)
class Cumsum(Op):
    """cumsum(dim): each element the sum of those before it along dim, itself included."""

    def call_params(self, walk, name, args, kwargs):
        bound = bind_args(name, args, kwargs, ("dim",), required=("dim",))
        return {"dim": int_arg(bound["dim"], "dim")}

    def _groups(self, shape: Shape, params: dict[str, Any]) -> np.ndarray:
        return np.array(reduce_groups(shape, params["dim"], True)[1], dtype=np.int64).reshape(-1, shape[norm_dim(
            params["dim"], len(shape))] if shape else 1)

    def shape(self, shapes, params):
        groups = self._groups(shapes[0], params)
        checked(groups.shape[0] * groups.shape[1] * (groups.shape[1] + 1) // 2, f"cumsum along a dim of {groups.shape[1]}")
        return shapes[0]

    def forward(self, xs, shapes, params):
        out: list[sp.Expr] = [sp.Integer(0)] * len(xs[0])
        for g in self._groups(shapes[0], params).tolist():
            for k, j in enumerate(g):
                out[j] = sp.Add(*(xs[0][m] for m in g[: k + 1]))
        return out

    def partials(self, xs, outs, shapes, params):
        for g in self._groups(shapes[0], params).tolist():
            for k, j in enumerate(g):
                for m in g[: k + 1]:
                    yield j, 0, m, sp.Integer(1)

    def array_forward(self, xs, shapes, params):
        groups = self._groups(shapes[0], params)
        out = np.empty(flat(xs[0]).size)
        out[groups] = np.cumsum(flat(xs[0])[groups], axis=1)
        return out.reshape(shapes[0])

    def dtype_forward(self, cast, xs, shapes, params):
        # torch's CPU kernel adds in double for float32, rounding each running sum once into the dtype
        return cast(self.array_forward(xs, shapes, params))

    def array_local(self, xs, out, shapes, params):
        groups = self._groups(shapes[0], params)
        n = groups.shape[1]
        k, m = np.tril_indices(n)  # output position k reads members 0..k
        rows = groups[:, k].reshape(-1)
        cols = groups[:, m].reshape(-1)
        return [(0, rows, cols, np.ones(rows.size), None)]

    def _letters(self, shape, params):
        own = list(LETTERS[: len(shape)])
        if not own:
            return own, own, "0", "0"
        d = norm_dim(params["dim"], len(shape))
        (k,) = free(own, 1)
        other = list(own)
        other[d] = k
        return own, other, k, own[d]

    def forward_tex(self, out, args, out_shape, params):
        own, other, k, mine = self._letters(args[0].shape, params)
        if not own:
            return rf"{out} = {args[0].tex}"
        return rf"{el(out, own)} = \sum_{{{k} \le {mine}}} {el(args[0].tex, other)}"

    def forward_numbers(self, k, xs, shapes, params, number):
        for g in self._groups(shapes[0], params).tolist():
            if k in g:
                return sum_tex([number(float(flat(xs[0])[m])) for m in g[: g.index(k) + 1]])
        return None

    def backward_tex(self, a, args, out, out_shape, params, up):
        own, other, k, mine = self._letters(args[0].shape, params)
        if not own:
            return up(out)
        return rf"\sum_{{{k} \ge {mine}}} {up(el(out, other))}"

    def latex(self, ts, params):
        return rf"\operatorname{{cumsum}}_{{\text{{dim}}={params['dim']}}}\left({ts[0]}\right)"

    def run(self, torch, ts, params):
        return torch.cumsum(ts[0], dim=params["dim"])


def along(walk: Walk, call: ast.AST, *, top: bool) -> Arg | None:
    """Read x.max(dim) or torch.min(x, dim=1) as its values (what .values and [0] take), or None for another call."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in ("max", "min")):
        return None
    name, args = call.func.attr, list(call.args)
    module = dotted_name(call.func.value)
    if module == "torch":
        if not args:
            return None
        subject = args.pop(0)
    else:
        subject = call.func.value
    kwargs = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if len(kwargs) != len(call.keywords) or any(isinstance(a, ast.Starred) for a in args):
        return None
    if not (args and _integer_literal(args[0])) and "dim" not in kwargs:
        return None  # over all elements, or max(a, b) of two tensors: no values to take
    bound = bind_args(name, args, kwargs, ("dim", "keepdim"), required=("dim",))
    params = {"dim": int_arg(bound["dim"], "dim"), "keepdim": bool_arg(bound.get("keepdim"), "keepdim")}
    x = walk.tensor(subject, f"{name}'s operand")
    return walk.make(f"{name}_dim", [x], params, top=top)


def _first_share(members: np.ndarray, outs: np.ndarray) -> np.ndarray:
    """max(dim)'/min(dim)' on rows of members: 1 at the first extreme (a nan first, as torch returns it), else 0."""
    tied = (members == outs) | (np.isnan(members) & np.isnan(outs))
    first = np.zeros(members.shape)
    first[np.arange(members.shape[0]), tied.argmax(axis=1)] = 1.0
    return first


@dataclass(frozen=True)
class Along(Reduction):
    """x.max(dim).values and x.min(dim)[0]: the extremes along a dim, the gradient to the index torch returns."""

    def attribute(self, walk, subject, *, top):
        found = along(walk, subject, top=top)
        if found is None:
            raise ExprError(".values belongs to x.max(dim) or x.min(dim) (allowed: x.max(1).values, x.min(dim=0).values)")
        return found

    def grad_fn(self, consts, shapes, params):
        return self.grad_fn_name

    def latex(self, ts, params):
        return rf"\{self.key[:3]}_{{\text{{dim}}={params['dim']}}}\left({ts[0]}\right)"

    def run(self, torch, ts, params):
        return getattr(ts[0], self.method)(params["dim"], keepdim=params["keepdim"]).values


def _dim_suffix(params: dict[str, Any]) -> str:
    return "" if params.get("dim") is None else rf"_{{\text{{dim}}={params['dim']}}}"


def _extreme_share(a, members, out, params):
    return TieShare(a, out, *members)


def _tie(members, out):
    return "tie" if sum(1 for m in members if m == out) > 1 else None


def _tie_share(members: np.ndarray, outs: np.ndarray) -> np.ndarray:
    """max'/min' on rows of members: 1/k for each of k tied extremes (nan ties with nan, as torch)."""
    tied = (members == outs) | (np.isnan(members) & np.isnan(outs))
    return tied / tied.sum(axis=1, keepdims=True)


def _sum_in_dtype(cast, x, groups, out_shape):
    """torch adds the terms in the dtype: a contiguous row by its cascade, other groups one after another."""
    members = np.ravel(x)[groups]
    size, n = groups.shape
    if n > 1 and np.all(np.diff(groups, axis=1) == 1):  # all elements, or along the last dim: contiguous rows
        return cast.inner_sum(members).reshape(out_shape)
    stride = groups[0, 1] - groups[0, 0] if n > 1 else 0
    if n > 1 and np.all(np.diff(groups, axis=1) == stride) and size % stride == 0:  # along a dim before the last
        blocks = members.reshape(size // stride, stride, n)  # each block: the n rows of `stride` columns
        return np.concatenate([cast.outer_sum(b.T) for b in blocks]).reshape(out_shape)
    rows = np.repeat(np.arange(size), n)
    return cast.sum(rows, members.reshape(-1), groups.shape[0]).reshape(out_shape)


def _prod_in_dtype(cast, x, groups, out_shape):
    """torch multiplies in the dtype: a float32 product past its range is inf even where a later factor would bring
    it back (3.4e38 · 2 · 0.1); the factors are taken one after another (a vectorised row may pair them otherwise)."""
    members = np.ravel(x)[groups]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        product = members[:, 0].copy()
        for j in range(1, members.shape[1]):
            product = cast(product * members[:, j])
    return product.reshape(out_shape)


def _mean_in_dtype(cast, x, groups, out_shape):
    return (cast(_sum_in_dtype(cast, x, groups, out_shape)) / groups.shape[1]).reshape(out_shape)


def _norm_in_dtype(cast, x, groups, out_shape):
    """torch sums the squares in the dtype: they overflow or vanish there; one element's norm is its abs."""
    members = np.ravel(x)[groups]
    if groups.shape[1] == 1:
        return np.abs(members[:, 0]).reshape(out_shape)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt(cast(cast(np.square(members)).sum(axis=1))).reshape(out_shape)


def _lse(m: np.ndarray, p: dict) -> np.ndarray:
    """logsumexp on rows, as torch: shift by the row's maximum (0 where that is infinite), add it back after the log."""
    top = m.max(axis=1)
    top = np.where(np.isinf(top), 0.0, top)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return fmath.log(fmath.exp(m - top[:, None]).sum(axis=1)) + top


def _variance(m: np.ndarray, p: dict) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        mean = m.mean(axis=1, keepdims=True)
        # torch's Welford (in double) keeps a running mean, which never leaves the numbers' range: the var of
        # [-1e308, -1e308] along a dim is 0 there, where their sum overflows (into one element torch sums first:
        # _spread_in_dtype)
        wide = ~np.isfinite(mean) & np.isfinite(m).all(axis=1, keepdims=True)
        if wide.any():
            mean = np.where(wide, (m / m.shape[1]).sum(axis=1, keepdims=True), mean)
        return ((m - mean) ** 2).sum(axis=1) / (m.shape[1] - p["correction"])


def _variance_d(m: np.ndarray, o: np.ndarray, p: dict) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return 2 / (m.shape[1] - p["correction"]) * (m - _backward_mean(m, p, active_rounding()))


def _backward_mean(m: np.ndarray, p: dict, cast) -> np.ndarray:
    """Return each row's mean (a column) as var_backward takes it: self.mean(dim), in the dtype with a cast."""
    with np.errstate(over="ignore", invalid="ignore"):
        if cast is None:
            return m.mean(axis=1, keepdims=True)
        if p.get("dim") is None and m.shape[0] == 1:  # self.mean() of all elements: torch's sum of a contiguous row
            return cast(cast.inner_sum(m) / m.shape[1])[:, None]
        # torch's var_backward takes self.mean(dim) in the dtype: a sum past its range makes the mean inf
        rows = np.repeat(np.arange(m.shape[0]), m.shape[1])
        return cast(cast.sum(rows, m.reshape(-1), m.shape[0]) / m.shape[1])[:, None]


def _deviation_d(m: np.ndarray, o: np.ndarray, p: dict) -> np.ndarray:
    # torch: var's derivative applied to grad / (2 · std), masked to 0 where std is 0; the mask comes first, so an
    # infinite x - mean (a float32 sum past its range) still makes 0 · inf = nan
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        spread = _variance_d(m, o, p)
        return np.where(o == 0, 0.0 * spread, spread / (2 * np.where(o == 0, 1.0, o)))


def _product_rounding(m: np.ndarray, o: np.ndarray) -> np.ndarray:
    # torch multiplies in an order of its kernel's choosing: each of the n - 1 products may round differently
    return np.abs(o) * max(m.shape[1] - 1, 0)


def _lse_rounding(m: np.ndarray, o: np.ndarray) -> np.ndarray:
    # the kernel rounds each shifted exp, their sum and its log, then adds the maximum back
    return np.abs(m.max(axis=1)) + m.shape[1]


REDUCTIONS = [
    Reduction("sum", "sum rule", "SumBackward0", Spelling(names=("sum",)), saves=False, in_dtype=_sum_in_dtype, same_local=True, combine=lambda m, p: sp.Add(*m),
              d=lambda a, m, o, p: sp.Integer(1), tex=lambda t, p: rf"\operatorname{{sum}}{_dim_suffix(p)}\left({t}\right)",
              method="sum", dims=True, array_combine=lambda m, p: m.sum(axis=1), array_d=lambda m, o, p: np.ones_like(m)),
    Reduction("mean", "sum rule and constant multiple rule", "MeanBackward0", Spelling(names=("mean",)), saves=False,
              in_dtype=_mean_in_dtype, same_local=True,
              combine=lambda m, p: sp.Mul(sp.Rational(1, len(m)), sp.Add(*m), evaluate=False), d=lambda a, m, o, p: sp.Rational(1, len(m)),
              tex=lambda t, p: rf"\operatorname{{mean}}{_dim_suffix(p)}\left({t}\right)", method="mean", dims=True,
              array_combine=lambda m, p: m.mean(axis=1), array_d=lambda m, o, p: np.full_like(m, 1 / m.shape[1]), divides=True),
    Reduction("norm", "chain rule with the power rule", "LinalgVectorNormBackward0", Spelling(names=("norm",)),
              in_dtype=_norm_in_dtype, dims=True, numbered=False, two_norm=True,
              # torch takes one element's norm as its abs, without squaring it out of float64's range
              combine=lambda m, p: sp.Abs(m[0]) if len(m) == 1 else sp.sqrt(sp.Add(*(e**2 for e in m))),
              d=lambda a, m, o, p: NormShare(a, o),
              tex=lambda t, p: rf"\left\lVert {t} \right\rVert{_dim_suffix(p)}", method="norm",
              kink_at=lambda m, o: "norm0" if o == 0 else None,
              array_combine=lambda m, p: np.abs(m[:, 0]) if m.shape[1] == 1 else np.sqrt((m * m).sum(axis=1)),
              array_d=lambda m, o, p: NormShare.numeric(m, o)),
    Reduction("max", "derivative of max", "MaxBackward1", Spelling(names=("max",)), extreme=True, combine=lambda m, p: sp.Max(*m),
              d=_extreme_share, tex=lambda t, p: rf"\max\left({t}\right)", method="max", kink_at=_tie,
              array_combine=lambda m, p: m.max(axis=1), array_d=lambda m, o, p: _tie_share(m, o), pairwise="maximum"),
    Reduction("min", "derivative of min", "MinBackward1", Spelling(names=("min",)), extreme=True, combine=lambda m, p: sp.Min(*m),
              d=_extreme_share, tex=lambda t, p: rf"\min\left({t}\right)", method="min", kink_at=_tie,
              array_combine=lambda m, p: m.min(axis=1), array_d=lambda m, o, p: _tie_share(m, o), pairwise="minimum"),
    Reduction("prod", "product rule", "ProdBackward0", Spelling(names=("prod",)), dims=True, method="prod",
              combine=lambda m, p: sp.Mul(*m), d=lambda a, m, o, p: Others(a, o, *m),
              tex=lambda t, p: rf"\operatorname{{prod}}{_dim_suffix(p)}\left({t}\right)",
              array_combine=lambda m, p: np.prod(m, axis=1), array_d=_others_product, scalar_passes=True,
              array_masked=_without_gradient,
              in_dtype=_prod_in_dtype,
              rounds=_product_rounding),
    Reduction("logsumexp", "chain rule with the logarithm and exponential rules", "LogsumexpBackward0",
              Spelling(names=("logsumexp",)), dims=True, needs_dim=True, numbered=False, method="logsumexp", inexact32=True,
              combine=lambda m, p: sp.log(sp.Add(*(sp.exp(e) for e in m))), d=lambda a, m, o, p: sp.exp(a - o),
              tex=lambda t, p: rf"\operatorname{{logsumexp}}{_dim_suffix(p)}\left({t}\right)",
              array_combine=_lse, array_d=lambda m, o, p: fmath.exp(m - o), rounds=_lse_rounding),
    Reduction("var", "sum rule with the power rule", "VarBackward0", Spelling(names=("var",)), dims=True, spread=True,
              numbered=False, method="var", combine=lambda m, p: _spread_of(m, p["correction"]),
              d=lambda a, m, o, p: sp.Mul(sp.Rational(2, len(m) - p["correction"]), _centred(a, m), evaluate=False),
              tex=lambda t, p: rf"\operatorname{{var}}{_dim_suffix(p)}\left({t}\right)",
              array_combine=_variance, array_d=_variance_d),
    Reduction("std", "chain rule with the power rule", "StdBackward0", Spelling(names=("std",)), dims=True, spread=True,
              numbered=False, method="std", combine=lambda m, p: sp.Pow(_spread_of(m, p["correction"]), sp.S.Half, evaluate=False),
              # torch masks grad / (2 · std) to 0 where std is 0 (all members equal), so no nan flows back
              d=lambda a, m, o, p: sp.Mul(sp.Rational(1, len(m) - p["correction"]), NormShare(_centred(a, m), o),
                                          evaluate=False), masks_zero=True,
              kink_at=lambda m, o: "std0" if o == 0 else None,
              tex=lambda t, p: rf"\operatorname{{std}}{_dim_suffix(p)}\left({t}\right)",
              array_combine=lambda m, p: np.sqrt(_variance(m, p)), array_d=_deviation_d, inexact32=True),
    Cumsum("cumsum", "sum rule", "CumsumBackward0", Spelling(names=("cumsum",)), saves=False),
    *(Reduction(kind, "index of the extreme", "", Spelling(names=(kind,)), dims=True, method=kind, tracks=False, saves=False,
                integer=True, cut_kind="index", combine=lambda m, p, code=code: Extremal(sp.Integer(code), *m),
                d=lambda a, m, o, p: sp.Integer(0), tex=lambda t, p, kind=kind: rf"\operatorname{{{kind}}}{_dim_suffix(p)}"
                                                                           rf"\left({t}\right)",
                array_combine=lambda m, p, code=code: Extremal.rows(code, m),
                array_d=lambda m, o, p: np.zeros_like(m))
      for code, kind in enumerate(("argmax", "argmin"))),
    Along("max_dim", "derivative of max", "MaxBackward0", Spelling(attribute="values", after="max(dim)"), extreme=True, dims=True, first=True,
          combine=lambda m, p: sp.Max(*m), d=lambda a, before, o, p: FirstShare(a, o, *before), method="max",
          kink_at=lambda m, o: "tie_first" if sum(1 for e in m if e == o) > 1 else None, tie_key="tie_first",
          tex=None, array_combine=lambda m, p: m.max(axis=1), array_d=lambda m, o, p: _first_share(m, o)),
    Along("min_dim", "derivative of min", "MinBackward0", Spelling(), extreme=True, dims=True, first=True,
          combine=lambda m, p: sp.Min(*m), d=lambda a, before, o, p: FirstShare(a, o, *before), method="min",
          kink_at=lambda m, o: "tie_first" if sum(1 for e in m if e == o) > 1 else None, tie_key="tie_first",
          tex=None, array_combine=lambda m, p: m.min(axis=1), array_d=lambda m, o, p: _first_share(m, o)),
]
