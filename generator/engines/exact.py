"""The derivation: exact values, local derivatives, adjoints, Jacobians and Jᵀ·v.

Every element of every tensor is its own real sympy symbol, named after torch's
0-based index. Forward values are exact sympy numbers; the backward pass walks
the graph in reverse topological order and applies the chain rule element by
element, keeping every term so that the document can show it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sympy as sp

from ..graph.model import Graph, Node, ones_gradient
from ..floats.ieee import approx, exact_number, float_value, in_range, negative_zero, number, power
from ..ops.derivatives import MASKS, STEPS
from ..ops import REGISTRY
from ..ops.base import numel
from ..spec.model import Array, Call, apply_resets, shared
from ..spec.model import Hook, active_hooks

MASKED = object()  # a local derivative that torch applies as a mask (where), not as a factor
MAX_EXACT_OPS = 40  # an exact value larger than this many operations is kept as a 40-digit float
MAX_EXACT_INT = 10**60  # likewise a fraction whose numerator or denominator grows past this


@dataclass(frozen=True)
class Term:
    """One product of the chain rule: upstream adjoint times a local derivative."""

    consumer: str  # the node whose adjoint flows back
    out_index: int
    local: sp.Expr  # d consumer[out_index] / d node[index], in element symbols
    local_value: sp.Expr
    upstream: sp.Expr  # the adjoint of consumer[out_index]


@dataclass(frozen=True)
class Adjoint:
    """d output / d node[index], with every chain-rule term that makes it."""

    node: str
    index: int
    terms: tuple[Term, ...]
    value: sp.Expr


@dataclass(frozen=True)
class Kink:
    """An element where an op is not differentiable, and torch's choice there."""

    node: str  # the op's node
    index: int  # the output element
    key: str  # relu0, abs0, clamp_edge, tie, norm0, sqrt0, log0, div0, pow0


@dataclass(frozen=True)
class Pass:
    """One backward call: its gradient v, every adjoint, the Jacobians and Jᵀ·v."""

    call: Call
    gradient: tuple[sp.Expr, ...]
    implicit: bool  # torch supplied the gradient 1
    order: tuple[str, ...]  # nodes reached, output first
    adjoints: dict[str, tuple[Adjoint, ...]]
    jacobians: dict[str, tuple[tuple[sp.Expr, ...], ...]]  # leaf -> numel(output) rows
    vjp: dict[str, tuple[sp.Expr, ...]]
    kinks: tuple[Kink, ...]
    hooked: dict[str, tuple[tuple[sp.Expr, ...], ...]] = field(default_factory=dict)  # tensor -> its gradient before its hooks, then after each


@dataclass(frozen=True)
class Derivation:
    """Everything derived from a graph: what the documents show and the checks compare."""

    graph: Graph
    symbols: dict[str, tuple[sp.Symbol, ...]]
    elements: dict[str, tuple[sp.Expr, ...]]  # each element in its parents' symbols
    values: dict[str, tuple[sp.Expr, ...]]
    passes: tuple[Pass, ...]
    grads: dict[str, tuple[sp.Expr, ...] | None]  # leaf -> .grad after every call

    large: ClassVar[bool] = False  # exact sympy numbers, every Jacobian as rows (engines/sparse.py: True)



def symbols_for(node: Node) -> tuple[sp.Symbol, ...]:
    """Return one real symbol per element, named node[i,j] as torch indexes."""
    from ..ops.base import unravel

    if not node.shape:
        return (sp.Symbol(node.name, real=True),)
    return tuple(
        sp.Symbol(f"{node.name}[{','.join(map(str, unravel(k, node.shape)))}]", real=True)
        for k in range(numel(node.shape))
    )


def _held(value: sp.Expr, expr: sp.Expr, shadow: dict) -> sp.Expr:
    """Return an exact value as the float64 torch holds for it, where that is finite (else the value itself)."""
    if not (value.is_number and value.is_finite):
        return value
    near = float_value(expr, shadow)
    return sp.Rational(near) if math.isfinite(near) else value


def evaluate(expr: sp.Expr, env: dict[sp.Symbol, sp.Expr], shadow: dict | None = None) -> sp.Expr:
    """Substitute values, with IEEE results where sympy has none (1/0 is inf, signed as torch's zero).

    `shadow` holds the same values in float64, for the sign of a zero that is divided by.
    """
    if expr in env:
        return env[expr]
    if not expr.args:
        return expr
    if expr.is_Mul and any(f.is_Pow and f.exp.is_negative for f in expr.args):
        quotient = _quotient(expr, env, shadow)
        if quotient is not None:
            return quotient
    args = [evaluate(a, env, shadow) for a in expr.args]
    if expr.func in (sp.sin, sp.cos) and shadow is not None:
        # beyond 2**26 a rounding of the argument moves sin by more than the check's tolerance:
        # take the argument torch has, the float64 the shadow computed op by op
        near = float_value(expr.args[0], shadow)
        if math.isfinite(near) and abs(near) >= 2**26:
            args = [sp.Rational(float(near))]
    decides = getattr(expr.func, "decides", ())
    if decides and shadow is not None:
        # a tie, a kink or a comparison: torch decides it on the numbers it holds, where rounding may have made
        # two exactly different values equal (3.4e38 + 2 and 3.4e38 - 1 tie in float64)
        args = [_held(a, e, shadow) if decides is True or i in decides else a
                for i, (a, e) in enumerate(zip(args, expr.args))]
    if expr.func in STEPS and shadow is not None and args[0].is_finite:
        near = float_value(expr.args[0], shadow)
        if math.isfinite(near):
            args = [sp.Rational(float(near))]
    if expr.is_Pow and args[0] == 1:
        return sp.Integer(1)  # IEEE's pow(1, nan) is 1, as in torch; sympy says nan
    if expr.is_Pow and args[0] == 0 and args[1].is_negative:
        # an odd power keeps the zero's sign, and so does torch's rsqrt (a number exponent -0.5): 1 / sqrt(-0.0)
        odd = args[1].is_integer and args[1].is_odd or expr.args[1] == sp.Rational(-1, 2)
        if odd and shadow is not None and negative_zero(float_value(expr.args[0], shadow)):
            return -sp.oo  # 1 / -0.0
        return sp.oo
    if expr.func is sp.log and args[0] == 0:
        return -sp.oo
    if expr.func is sp.log and args[0].is_extended_negative:
        return sp.nan
    if expr.func in (sp.Max, sp.Min) and any(a is sp.nan for a in args):
        return sp.nan
    if expr.func is sp.sign and args[0] is sp.nan:
        return sp.Integer(0)  # torch's sgn(nan), so abs' gradient at nan is 0 times the upstream
    signed = getattr(expr.func, "at_signed_zero", None)  # a derivative that tells -0.0 from +0.0 says so itself
    if signed is not None and shadow is not None and any(a == 0 for a in args):
        found = signed(*args, negative=tuple(a == 0 and negative_zero(float_value(e, shadow))
                                             for a, e in zip(args, expr.args)))
        if found is not None:
            return found
    result = power(*args) if expr.is_Pow else expr.func(*args)
    if result is sp.zoo or result.has(sp.zoo, sp.AccumBounds) or _complex(result):
        return sp.nan  # sin(inf) is a range to sympy, nan to torch
    return _tame(result)


def _quotient(expr: sp.Mul, env: dict[sp.Symbol, sp.Expr], shadow: dict | None) -> sp.Expr | None:
    """Return a product with divisors as torch divides: a / b, never a times an out-of-range 1 / b.

    None where a divisor is 0, inf or nan, for evaluate's IEEE rules on 1 / 0.
    """
    top = [evaluate(f, env, shadow) for f in expr.args if not (f.is_Pow and f.exp.is_negative)]
    divisors = [f for f in expr.args if f.is_Pow and f.exp.is_negative]
    # a small integer power is divided by one factor at a time, as torch's -(a / b) / b: b² would leave
    # float64's range (or lose digits below it) where a / b² does not
    small = [f.exp.is_Integer and f.exp >= -4 for f in divisors]
    stepwise = [(evaluate(f.base, env, shadow), int(-f.exp)) for f, s in zip(divisors, small) if s]
    bottom = [evaluate(sp.Pow(f.base, -f.exp), env, shadow) for f, s in zip(divisors, small) if not s]
    if any(b == 0 or not b.is_finite for b in bottom + [b for b, _ in stepwise]) or not all(t.is_finite for t in top):
        return None
    result = _tame(_tame(sp.Mul(*top)) / _tame(sp.Mul(*bottom))) if bottom else _tame(sp.Mul(*top))
    for base, times in stepwise:
        for _ in range(times):
            result = _tame(result / base)
    return result


def _complex(value: sp.Expr) -> bool:
    """Tell whether a number is not real (torch gives nan where sympy goes complex)."""
    if not value.is_number:
        return False
    if value.is_extended_real:
        return False
    # sympy's assumptions can say False for a real number whose sign they fail to settle
    # (log of a value within 1e-43 of 1): let the number itself decide
    return sp.im(approx(value, 30)) != 0


def _sum(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """Add two gradient terms; where 40-digit floats cancel but for their last digits, 0, as float64 cancels them.

    1/x - (x/x)/x at x = 1e-160 is 0 in torch: both terms are the same double. As 40-digit floats rounded
    along two paths they may differ in the 40th digit, a residue far below float64's precision.
    """
    total = _tame(a + b)
    if (total.is_Float and total != 0 and (a.is_Float or b.is_Float)
            and abs(total) < sp.Float(2) ** -100 * max(abs(a), abs(b))):
        return sp.Integer(0)
    return total


def _tame(value: sp.Expr) -> sp.Expr:
    """Keep exact values in float64's range and readable: a value too large to show exactly becomes a 40-digit float."""
    value = in_range(value)
    if value.is_Rational:
        # repeated squaring doubles a fraction's digits each time: keep 40 significant digits instead
        if max(abs(value.p), value.q) > MAX_EXACT_INT:
            return sp.Float(value, 40)
        return value
    if not value.is_number or value in (sp.oo, -sp.oo, sp.nan):
        return value
    if sp.count_ops(value) > MAX_EXACT_OPS:
        return sp.Float(approx(value, 40), 40)
    return value


def sympy_params(node: Node) -> dict[str, Any]:
    """Return a node's parameters as the op's exact forms take them (numbers as sympy numbers)."""
    return REGISTRY[node.op].exact_params(node.kwargs)


def _array(array: Array) -> tuple[sp.Expr, ...]:
    return tuple(exact_number(v) for v in array.values)


class ExactEngine:
    """Compute forward values once, then any number of backward passes."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.symbols: dict[str, tuple[sp.Symbol, ...]] = {}
        self.elements: dict[str, tuple[sp.Expr, ...]] = {}
        self.values: dict[str, tuple[sp.Expr, ...]] = {}
        self.shadows: dict[str, tuple[float, ...]] = {}  # the same values in float64, for signed zeros
        self.local: dict[str, list[tuple[int, int, int, sp.Expr, sp.Expr]]] = {}
        self.kinks: dict[str, list[Kink]] = {}
        self.hook_fns: dict[Hook, Any] = {}
        inputs = {i.name: i for i in graph.spec.inputs}
        for node in graph.nodes:
            syms = symbols_for(node)
            self.symbols[node.name] = syms
            if node.is_leaf:
                values = _array(inputs[node.name].value)
                self.elements[node.name] = syms
                self.shadows[node.name] = tuple(number(v) for v in values)
            else:
                op = REGISTRY[node.op]
                holders, env, real, shadow = self._placeholders(node)
                exprs = op.forward(holders, self._shapes(node), sympy_params(node))
                with sp.evaluate(False):  # keep the op's own form for display: (z00 + z01) / 2
                    self.elements[node.name] = tuple(e.xreplace(real) for e in exprs)
                operands = [[env[h] for h in hs] for hs in holders]
                stable = op.stable_forward(holders, operands, self._shapes(node), sympy_params(node))
                values = tuple(evaluate(e, env, shadow) for e in stable)
                self.shadows[node.name] = tuple(float_value(e, shadow) for e in stable)
            self.values[node.name] = values

    def _placeholders(self, node: Node, outs: bool = False):
        """Return operands as fresh symbols, their values, and the map back to the element symbols.

        Each operand gets its own symbols, so that sympy cannot cancel y / y to 1 or
        log(exp(a)) to a before the values are in: torch computes each op on numbers,
        and 0 / 0 is nan there.
        """
        holders: list[list[sp.Expr]] = []
        env: dict[sp.Symbol, sp.Expr] = {}
        real: dict[sp.Symbol, sp.Expr] = {}
        shadow: dict[sp.Symbol, float] = {}
        sources = [
            (self.symbols[a], self.values[a], self.shadows[a]) if isinstance(a, str)
            else ((exact_number(a),), (exact_number(a),), (number(exact_number(a)),))
            for a in node.args
        ]
        if outs:
            sources.append((self.symbols[node.name], self.values[node.name], self.shadows[node.name]))
        for position, (syms, values, floats) in enumerate(sources):
            # named in order: sympy sorts a sum's terms by name before its process-wide Dummy counter,
            # so the order shown never depends on what the process derived before
            fresh = [sp.Dummy(f"a{position}_{k:06d}") for k in range(len(syms))]
            holders.append(fresh)
            env.update(zip(fresh, values))
            real.update(zip(fresh, syms))
            shadow.update(zip(fresh, floats))
        return holders, env, real, shadow

    def _shapes(self, node: Node) -> list[tuple[int, ...]]:
        return [self.graph.node(a).shape if isinstance(a, str) else () for a in node.args]

    def partials(self, node: Node) -> list[tuple[int, int, int, sp.Expr, sp.Expr]]:
        """Return (out, arg, index, d out / d arg[index], its value) for a node, computed once."""
        if node.name not in self.local:
            op = REGISTRY[node.op]
            holders, env, real, shadow = self._placeholders(node, outs=True)
            *operands, outs = holders
            rows = []
            for k, a, j, d in op.partials(operands, outs, self._shapes(node), sympy_params(node)):
                if isinstance(node.args[a], str):
                    value = evaluate(d, env, shadow)
                    masked = value == 0 and isinstance(d, MASKS) and (
                        not hasattr(d.func, "masks") or bool(d.func.masks(*(evaluate(arg, env, shadow) for arg in d.args))))
                    rows.append((k, a, j, d.xreplace(real), MASKED if masked else value))
            self.local[node.name] = rows
            self.kinks[node.name] = self._kinks(node)
        return self.local[node.name]

    def _kinks(self, node: Node) -> list[Kink]:
        values = [list(self.values[a]) if isinstance(a, str) else [exact_number(a)] for a in node.args]
        found = REGISTRY[node.op].kinks(values, list(self.values[node.name]), self._shapes(node), sympy_params(node))
        return [Kink(node.name, k, key) for k, key in found]

    def backward(self, output: str, v: tuple[sp.Expr, ...], *, terms: bool,
                 hooks: dict[str, tuple[Hook, ...]] | None = None) -> dict[str, list]:
        """Propagate v from output; return per node per element its terms (or just values).

        hooks: per tensor, what torch calls on its gradient once complete, before it flows on (or into a leaf's .grad).
        """
        nodes = self.graph.ancestors(output)
        adj: dict[str, list[sp.Expr]] = {n.name: [sp.Integer(0)] * numel(n.shape) for n in nodes}
        parts: dict[str, list[list[Term]]] = {n.name: [[] for _ in range(numel(n.shape))] for n in nodes}
        adj[output] = list(v)
        hooked: dict[str, tuple[tuple[sp.Expr, ...], ...]] = {}
        for node in nodes:
            if hooks and node.name in hooks:
                adj[node.name] = self.hooked(node.name, adj[node.name], hooks[node.name], hooked)
            if node.is_leaf:
                continue
            upstream = adj[node.name]
            fused = REGISTRY[node.op].fused_vjp(upstream, list(self.values[node.name]), self._shapes(node),
                                                sympy_params(node))
            if fused is not None and node.args[0] in adj:
                adj[node.args[0]] = [_tame(x + _tame(g)) for x, g in zip(adj[node.args[0]], fused)]
            for k, a, j, local, local_value in self.partials(node):
                parent = node.args[a]
                if parent not in adj:
                    continue
                if local_value is MASKED:  # torch selects here rather than multiplies: nan * 0 stays 0
                    local_value = sp.Integer(0)
                elif fused is None or a != 0:  # each product and each sum rounded to float64's range, as torch's
                    adj[parent][j] = _sum(adj[parent][j], _tame(upstream[k] * local_value))
                if terms:
                    parts[parent][j].append(Term(node.name, k, local, local_value, upstream[k]))
        return {"adj": adj, "terms": parts, "order": [n.name for n in nodes], "hooked": hooked}

    def hooked(self, name: str, grad: list[sp.Expr], hooks: tuple[Hook, ...], seen: dict) -> list[sp.Expr]:
        """Return a tensor's gradient after its hooks, each given the one before; note every step in seen."""
        chain = [tuple(grad)]
        for hook in hooks:
            if hook not in self.hook_fns:
                self.hook_fns[hook] = hook_function(self.graph, hook)
            chain.append(self.hook_fns[hook](chain[-1]))
        seen[name] = tuple(chain)
        return list(chain[-1])


def derive(graph: Graph) -> Derivation:
    """Derive values, every backward pass, and the leaves' grads."""
    engine = ExactEngine(graph)
    passes = []
    grads: dict[str, list[sp.Expr] | None] = {i.name: None for i in graph.spec.inputs}
    for i, call in enumerate(graph.spec.backward):
        grads = apply_resets(grads, graph.spec.resets_before(i), lambda leaf, g: [sp.Integer(0)] * len(g))
        passes.append(_pass(engine, graph, call))
        for leaf, vjp in passes[-1].vjp.items():
            if not graph.spec.accumulates(leaf, call.seq):
                continue
            leaf = graph.spec.identity(leaf)  # a leaf changed in place keeps one .grad
            prev = grads[leaf]
            grads[leaf] = list(vjp) if prev is None else [_tame(p + q) for p, q in zip(prev, vjp)]
    grads = shared(grads, graph.spec)
    return Derivation(
        graph=graph,
        symbols=engine.symbols,
        elements=engine.elements,
        values=engine.values,
        passes=tuple(passes),
        grads={k: None if g is None else tuple(g) for k, g in grads.items()},
    )


def _pass(engine: ExactEngine, graph: Graph, call: Call) -> Pass:
    out = graph.node(call.output)
    implicit = call.gradient is None
    v = _array(ones_gradient(out) if implicit else call.gradient)
    result = engine.backward(call.output, v, terms=True, hooks=active_hooks(graph.spec, call))
    chain_rule = {**result["adj"], **{name: list(chain[0]) for name, chain in result["hooked"].items()}}
    adjoints = {  # what the chain rule sums, before any hook on the tensor changes it (p.hooked has what they made)
        name: tuple(
            Adjoint(name, j, tuple(result["terms"][name][j]), chain_rule[name][j])
            for j in range(len(chain_rule[name]))
        )
        for name in result["order"]
    }
    leaves = [n for n in result["order"] if graph.node(n).is_leaf]
    vjp = {leaf: tuple(result["adj"][leaf]) for leaf in leaves}
    jacobians = {leaf: [] for leaf in leaves}
    size = numel(out.shape)
    for row in range(size):
        unit = tuple(sp.Integer(1 if i == row else 0) for i in range(size))
        rows = engine.backward(call.output, unit, terms=False)["adj"]
        for leaf in leaves:
            jacobians[leaf].append(tuple(rows[leaf]))
    kinks = tuple(k for name in result["order"] if not graph.node(name).is_leaf for k in engine.kinks.get(name, []))
    return Pass(
        call=call,
        gradient=v,
        implicit=implicit,
        order=tuple(result["order"]),
        adjoints=adjoints,
        jacobians={leaf: tuple(rows) for leaf, rows in jacobians.items()},
        vjp=vjp,
        kinks=kinks,
        hooked=result["hooked"],
    )


def full_expression(derivation: Derivation, name: str) -> tuple[sp.Expr, ...]:
    """Return a node's elements written in the leaves' symbols only (every step substituted)."""
    full: dict[sp.Symbol, sp.Expr] = {}
    for node in derivation.graph.nodes:
        exprs = derivation.elements[node.name]
        if not node.is_leaf:
            exprs = tuple(e.xreplace(full) for e in exprs)
        full.update(zip(derivation.symbols[node.name], exprs))
        if node.name == name:
            return exprs
    raise KeyError(name)


def expression_size(derivation: Derivation, name: str) -> int:
    """Return a bound on the operations in a node's fully substituted elements, without building them.

    Substituting can double an expression's size at every step (x @ x @ x ...), so the
    documents ask this before they call full_expression.
    """
    sizes: dict[sp.Symbol, int] = {}
    for node in derivation.graph.nodes:
        for sym, expr in zip(derivation.symbols[node.name], derivation.elements[node.name]):
            if node.is_leaf:
                sizes[sym] = 0
                continue
            total = 0
            for part in sp.preorder_traversal(expr):
                total += sizes.get(part, 0) if part.is_Symbol else (1 if part.args else 0)
            sizes[sym] = total
        if node.name == name:
            return max(sizes[s] for s in derivation.symbols[name])
    raise KeyError(name)


def hook_function(graph: Graph, hook: Hook):
    """Return what a hook makes of a gradient, exactly: its expression of the gradient's elements, evaluated."""
    from ..graph.walk import hook_graph

    mini, out = hook_graph(graph, hook)
    engine = ExactEngine(mini)
    full: dict[sp.Symbol, sp.Expr] = {}
    for node in mini.nodes:
        exprs = engine.elements[node.name]
        if not node.is_leaf:
            exprs = tuple(e.xreplace(full) for e in exprs)
        full.update(zip(engine.symbols[node.name], exprs))
    result = tuple(full[s] for s in engine.symbols[out])
    symbols = engine.symbols[hook.param]
    return lambda grad: tuple(_tame(evaluate(e, dict(zip(symbols, grad)))) for e in result)
