"""Every operation, mirrored line by line in torch: values, grads and grad_fn names agree."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import sympy as sp
import torch

from generator.engines.exact import evaluate, full_expression
from generator.floats.ieee import to_float
from generator.ops.base import numel

from .helpers import run_spec

INPUTS = {
    "a": [[0.5, -1.5, 2.0], [1.0, 0.25, -0.5]],
    "p": [[0.5, 1.5, 2.0], [1.0, 0.25, 3.0]],
    "b": [0.5, -2.0, 1.5],
    "s": 0.75,
    "M": [[1.0, -0.5], [0.25, 2.0], [-1.0, 0.5]],
    "v": [1.0, -0.5, 2.0],
}

# (expression as a spec writes it, the same computation written directly in torch)
CASES = [
    ("a + b", lambda t: t.a + t.b),
    ("a - s", lambda t: t.a - t.s),
    ("2 - a", lambda t: 2 - t.a),
    ("a * b * 3", lambda t: t.a * t.b * 3),
    ("a / p", lambda t: t.a / t.p),
    ("1 / p", lambda t: 1 / t.p),
    ("a / 4", lambda t: t.a / 4),
    ("p ** 2", lambda t: t.p**2),
    ("p ** b", lambda t: t.p**t.b),
    ("2 ** a", lambda t: 2**t.a),
    ("p ** 0.5", lambda t: t.p**0.5),
    ("-a", lambda t: -t.a),
    ("a @ M", lambda t: t.a @ t.M),
    ("M @ a", lambda t: t.M @ t.a),
    ("b @ v", lambda t: t.b @ t.v),
    ("a @ v", lambda t: t.a @ t.v),
    ("v @ M", lambda t: t.v @ t.M),
    ("torch.matmul(a, M)", lambda t: torch.matmul(t.a, t.M)),
    ("a.matmul(M)", lambda t: t.a.matmul(t.M)),
    ("a.T", lambda t: t.a.T),
    ("a.t()", lambda t: t.a.t()),
    ("torch.t(M) * 2", lambda t: torch.t(t.M) * 2),
    ("torch.dot(b, v)", lambda t: torch.dot(t.b, t.v)),
    ("b.dot(v) * b", lambda t: t.b.dot(t.v) * t.b),
    ("torch.mm(a, M)", lambda t: torch.mm(t.a, t.M)),
    ("M.mm(a)", lambda t: t.M.mm(t.a)),
    ("a[1]", lambda t: t.a[1]),
    ("a.view(3, 2)", lambda t: t.a.view(3, 2)),
    ("a.reshape(-1) * b.view(3, 1)", lambda t: t.a.reshape(-1) * t.b.view(3, 1)),
    ("torch.reshape(a, (1, 6)) @ torch.reshape(M, [6])", lambda t: torch.reshape(t.a, (1, 6)) @ torch.reshape(t.M, [6])),
    ("(a * p).view(-1, 3, 1)", lambda t: (t.a * t.p).view(-1, 3, 1)),
    ("a[-1][0]", lambda t: t.a[-1][0]),
    ("a.exp()", lambda t: t.a.exp()),
    ("torch.log(p)", lambda t: torch.log(t.p)),
    ("p.sqrt()", lambda t: t.p.sqrt()),
    ("a.sin()", lambda t: t.a.sin()),
    ("torch.cos(a)", lambda t: torch.cos(t.a)),
    ("a.tanh()", lambda t: t.a.tanh()),
    ("torch.sigmoid(a)", lambda t: torch.sigmoid(t.a)),
    ("a.relu()", lambda t: t.a.relu()),
    ("torch.abs(a)", lambda t: torch.abs(t.a)),
    ("a.sum()", lambda t: t.a.sum()),
    ("a.sum(dim=0)", lambda t: t.a.sum(dim=0)),
    ("torch.sum(a, 1, keepdim=True)", lambda t: torch.sum(t.a, 1, keepdim=True)),
    ("a.mean()", lambda t: t.a.mean()),
    ("a.mean(dim=-1)", lambda t: t.a.mean(dim=-1)),
    ("a.norm()", lambda t: t.a.norm()),
    ("torch.norm(a)", lambda t: torch.norm(t.a)),
    ("a.max()", lambda t: t.a.max()),
    ("torch.min(a)", lambda t: torch.min(t.a)),
    ("a.pow(3)", lambda t: t.a.pow(3)),
    ("torch.pow(p, b)", lambda t: torch.pow(t.p, t.b)),
    ("torch.pow(2, a)", lambda t: torch.pow(2, t.a)),
    ("a.softmax(dim=1)", lambda t: t.a.softmax(dim=1)),
    ("torch.softmax(a, dim=0)", lambda t: torch.softmax(t.a, dim=0)),
    ("a.log_softmax(1)", lambda t: t.a.log_softmax(1)),
    ("torch.log_softmax(a, dim=0)", lambda t: torch.log_softmax(t.a, dim=0)),
    ("a.clamp(min=-1, max=0.75)", lambda t: t.a.clamp(min=-1, max=0.75)),
    ("a.clamp(min=0)", lambda t: t.a.clamp(min=0)),
    ("torch.clamp(a, max=0.3)", lambda t: torch.clamp(t.a, max=0.3)),
    ("(a * b).sum(0) @ v", lambda t: (t.a * t.b).sum(0) @ t.v),
    ("torch.mul(a, b) + a.multiply(2)", lambda t: torch.mul(t.a, t.b) + t.a.multiply(2)),
    ("a.sub(b) * a.subtract(2)", lambda t: t.a.sub(t.b) * t.a.subtract(2)),
    ("torch.div(a, p) + a.divide(4) + a.true_divide(p)", lambda t: torch.div(t.a, t.p) + t.a.divide(4) + t.a.true_divide(t.p)),
    ("a.neg() + torch.negative(b)", lambda t: t.a.neg() + torch.negative(t.b)),
    ("a.mul(2).div(p).sub(1)", lambda t: t.a.mul(2).div(t.p).sub(1)),
    ("b.unsqueeze(1) * v", lambda t: t.b.unsqueeze(1) * t.v),
    ("torch.unsqueeze(a, -1).squeeze(-1) * a.unsqueeze(0).squeeze()", lambda t: torch.unsqueeze(t.a, -1).squeeze(-1) * t.a.unsqueeze(0).squeeze()),
    ("(a * p).flatten() * 2", lambda t: (t.a * t.p).flatten() * 2),
    ("torch.flatten(M.unsqueeze(1), start_dim=1) * M", lambda t: torch.flatten(t.M.unsqueeze(1), start_dim=1) * t.M),
    ("a[:, 0] * 2", lambda t: t.a[:, 0] * 2),
    ("a[1:] + a[:, ::2].sum()", lambda t: t.a[1:] + t.a[:, ::2].sum()),
    ("a[0, 1:3] * M[1:, -1]", lambda t: t.a[0, 1:3] * t.M[1:, -1]),
    ("M[:] * M[-2:][0] + a[:, 1:-1].T", lambda t: t.M[:] * t.M[-2:][0] + t.a[:, 1:-1].T),
    ("torch.mv(M.T, b) + M.T.mv(v)", lambda t: torch.mv(t.M.T, t.b) + t.M.T.mv(t.v)),
    ("a.transpose(0, 1) * torch.transpose(M, 1, 0).T", lambda t: t.a.transpose(0, 1) * torch.transpose(t.M, 1, 0).T),
    ("a.permute(1, 0) @ a", lambda t: t.a.permute(1, 0) @ t.a),
    ("a.log1p()", lambda t: t.a.log1p()),
    ("torch.expm1(a)", lambda t: torch.expm1(t.a)),
    ("torch.exp2(a) * a.exp2()", lambda t: torch.exp2(t.a) * t.a.exp2()),
    ("p.rsqrt()", lambda t: t.p.rsqrt()),
    ("torch.atan(a)", lambda t: torch.atan(t.a)),
    ("(a * 0.4).asin()", lambda t: (t.a * 0.4).asin()),
    ("a.sinh()", lambda t: t.a.sinh()),
    ("torch.cosh(a)", lambda t: torch.cosh(t.a)),
    ("torch.nn.functional.silu(a)", lambda t: torch.nn.functional.silu(t.a)),
    ("a.sign() * a", lambda t: t.a.sign() * t.a),
    ("torch.nn.functional.gelu(a) + torch.nn.functional.gelu(a, approximate='tanh')",
     lambda t: torch.nn.functional.gelu(t.a) + torch.nn.functional.gelu(t.a, approximate="tanh")),
    ("torch.maximum(a, b)", lambda t: torch.maximum(t.a, t.b)),
    ("a.minimum(p)", lambda t: t.a.minimum(t.p)),
    ("torch.max(a, b) * a.min(p)", lambda t: torch.max(t.a, t.b) * t.a.min(t.p)),
    ("s * a + s", lambda t: t.s * t.a + t.s),
    ("a.prod() + a.prod(1).sum()", lambda t: t.a.prod() + t.a.prod(1).sum()),
    ("torch.prod(a, 0, keepdim=True) * p", lambda t: torch.prod(t.a, 0, keepdim=True) * t.p),
    ("a.logsumexp(1)", lambda t: t.a.logsumexp(1)),
    ("torch.logsumexp(a, dim=0, keepdim=True) * a", lambda t: torch.logsumexp(t.a, dim=0, keepdim=True) * t.a),
    ("a.var() + a.var(1, unbiased=False).sum()", lambda t: t.a.var() + t.a.var(1, unbiased=False).sum()),
    ("torch.var(a, 0, True, True) * p", lambda t: torch.var(t.a, 0, True, True) * t.p),
    ("a.std(dim=1, correction=0) * b[:2]", lambda t: t.a.std(dim=1, correction=0) * t.b[:2]),
    ("torch.std(a) * a", lambda t: torch.std(t.a) * t.a),
    ("a.cumsum(1) * p", lambda t: t.a.cumsum(1) * t.p),
    ("torch.cumsum(b, dim=0) + torch.cumsum(a, 0).sum()", lambda t: torch.cumsum(t.b, dim=0) + torch.cumsum(t.a, 0).sum()),
    ("torch.cat([a, p]) * 2", lambda t: torch.cat([t.a, t.p]) * 2),
    ("torch.cat((a, M.T, a * b), dim=0)", lambda t: torch.cat((t.a, t.M.T, t.a * t.b), dim=0)),
    ("torch.concat([a, M.T], -1) + torch.concatenate([b, v])", lambda t: torch.concat([t.a, t.M.T], -1) + torch.concatenate([t.b, t.v])),
    ("torch.stack([b, v, b * v]) @ M", lambda t: torch.stack([t.b, t.v, t.b * t.v]) @ t.M),
    ("torch.stack((a, p), dim=2) * s", lambda t: torch.stack((t.a, t.p), dim=2) * t.s),
    ("torch.stack([s, s * 2, b[0]])", lambda t: torch.stack([t.s, t.s * 2, t.b[0]])),
    ("b.expand(2, 3) * a", lambda t: t.b.expand(2, 3) * t.a),
    ("M[:, :1].expand(3, 4).sum(1) + s.expand(3)", lambda t: t.M[:, :1].expand(3, 4).sum(1) + t.s.expand(3)),
    ("a.unsqueeze(0).expand(4, -1, -1)", lambda t: t.a.unsqueeze(0).expand(4, -1, -1)),
    ("torch.nn.functional.l1_loss(a, p) + torch.nn.functional.l1_loss(a, p, reduction='sum')",
     lambda t: torch.nn.functional.l1_loss(t.a, t.p) + torch.nn.functional.l1_loss(t.a, t.p, reduction="sum")),
    ("a.max(1).values * torch.min(a, dim=0)[0].sum()", lambda t: t.a.max(1).values * torch.min(t.a, dim=0)[0].sum()),
    ("torch.max(M, 1, keepdim=True)[0] * M.min(dim=-1).values.unsqueeze(1)",
     lambda t: torch.max(t.M, 1, keepdim=True)[0] * t.M.min(dim=-1).values.unsqueeze(1)),
    ("p.reciprocal() + torch.reciprocal(b)", lambda t: t.p.reciprocal() + torch.reciprocal(t.b)),
    ("torch.nn.functional.linear(a, M.T, v[:2]) + torch.nn.functional.linear(a, M.T)",
     lambda t: torch.nn.functional.linear(t.a, t.M.T, t.v[:2]) + torch.nn.functional.linear(t.a, t.M.T)),
    ("torch.nn.functional.linear(b, a, bias=v[1:]) * torch.nn.functional.linear(v, a)",
     lambda t: torch.nn.functional.linear(t.b, t.a, bias=t.v[1:]) * torch.nn.functional.linear(t.v, t.a)),
    ("torch.bmm(torch.stack([a, p]), torch.stack([M, M * b.unsqueeze(1)]))",
     lambda t: torch.bmm(torch.stack([t.a, t.p]), torch.stack([t.M, t.M * t.b.unsqueeze(1)]))),
    ("torch.addmm(s, a, M) + torch.addmm(b[:2], M.T, a.T)", lambda t: torch.addmm(t.s, t.a, t.M) + torch.addmm(t.b[:2], t.M.T, t.a.T)),
    ("torch.nn.functional.smooth_l1_loss(a * 2, p, reduction='none')",
     lambda t: torch.nn.functional.smooth_l1_loss(t.a * 2, t.p, reduction="none")),
    ("torch.nn.functional.smooth_l1_loss(a, p, beta=0.5)", lambda t: torch.nn.functional.smooth_l1_loss(t.a, t.p, beta=0.5)),
    ("torch.nn.functional.huber_loss(a * 2, p)", lambda t: torch.nn.functional.huber_loss(t.a * 2, t.p)),
    ("torch.nn.functional.huber_loss(a, p, reduction='sum', delta=0.75)",
     lambda t: torch.nn.functional.huber_loss(t.a, t.p, reduction="sum", delta=0.75)),
    ("a.norm(dim=1) * torch.norm(a, 2, 0, True).sum() + a.norm('fro', -1, keepdim=True)",
     lambda t: t.a.norm(dim=1) * torch.norm(t.a, 2, 0, True).sum() + t.a.norm("fro", -1, keepdim=True)),
    ("torch.nn.functional.normalize(a) + torch.nn.functional.normalize(M, dim=0, eps=0.5).sum()",
     lambda t: torch.nn.functional.normalize(t.a) + torch.nn.functional.normalize(t.M, dim=0, eps=0.5).sum()),
    ("torch.nn.functional.dropout(a * 2, 0.5, training=False) + torch.nn.functional.dropout(b, 0.0)",
     lambda t: torch.nn.functional.dropout(t.a * 2, 0.5, training=False) + torch.nn.functional.dropout(t.b, 0.0)),
    ("a.chunk(2, dim=1)[0] * torch.split(a, [1, 2], 1)[1][:, :2] + a.split(2, -1)[-1].sum()",
     lambda t: t.a.chunk(2, dim=1)[0] * torch.split(t.a, [1, 2], 1)[1][:, :2] + t.a.split(2, -1)[-1].sum()),
    ("torch.chunk(M, 3)[2] * b.chunk(2)[1]", lambda t: torch.chunk(t.M, 3)[2] * t.b.chunk(2)[1]),
    ("torch.split(M, [2, 1])[0]", lambda t: torch.split(t.M, [2, 1])[0]),
    ("p.clamp_min(0.75) + torch.clamp_max(p, max=1.25)", lambda t: t.p.clamp_min(0.75) + torch.clamp_max(t.p, max=1.25)),
    ("torch.nn.functional.conv1d(a.reshape(1, 2, 3), M.reshape(1, 2, 3), b[:1], padding=1)",
     lambda t: torch.nn.functional.conv1d(t.a.reshape(1, 2, 3), t.M.reshape(1, 2, 3), t.b[:1], padding=1)),
    ("torch.nn.functional.conv2d(a.reshape(1, 1, 2, 3), M.reshape(1, 1, 3, 2)[:, :, :2], stride=(1, 2), padding=(1, 0))",
     lambda t: torch.nn.functional.conv2d(t.a.reshape(1, 1, 2, 3), t.M.reshape(1, 1, 3, 2)[:, :, :2], stride=(1, 2),
                                          padding=(1, 0))),
    ("torch.nn.functional.conv2d(a.reshape(1, 1, 2, 3), M.reshape(1, 1, 3, 2)[:, :, :, :1], padding='same') +"
     " torch.nn.functional.conv1d(a.reshape(1, 2, 3), M.reshape(1, 2, 3)[:, :, 1:], padding='valid').sum()",
     lambda t: torch.nn.functional.conv2d(t.a.reshape(1, 1, 2, 3), t.M.reshape(1, 1, 3, 2)[:, :, :, :1], padding="same")
     + torch.nn.functional.conv1d(t.a.reshape(1, 2, 3), t.M.reshape(1, 2, 3)[:, :, 1:], padding="valid").sum()),
    ("torch.nn.functional.conv2d(a.reshape(1, 2, 3), torch.stack([M[:2], M[1:]]).unsqueeze(1), v[:2], 2) * 2",
     lambda t: torch.nn.functional.conv2d(t.a.reshape(1, 2, 3), torch.stack([t.M[:2], t.M[1:]]).unsqueeze(1), t.v[:2], 2) * 2),
    ("torch.nn.functional.layer_norm(a, (3,), b, v) + torch.nn.functional.layer_norm(M, [2], eps=0.5).sum()",
     lambda t: torch.nn.functional.layer_norm(t.a, (3,), t.b, t.v) + torch.nn.functional.layer_norm(t.M, [2], eps=0.5).sum()),
    ("torch.nn.functional.layer_norm(a * b, [2, 3], bias=a) * torch.nn.functional.layer_norm(a, (3,), weight=v, eps=0)",
     lambda t: torch.nn.functional.layer_norm(t.a * t.b, [2, 3], bias=t.a)
     * torch.nn.functional.layer_norm(t.a, (3,), weight=t.v, eps=0)),
]

# Inputs placed exactly on kinks, where torch's conventions decide the derivative.
KINKS = {
    "k": [-1.0, 0.0, 1.0, 1.0],
    "z": [0.0, 0.0],
}
KINK_CASES = [
    ("k.relu()", lambda t: t.k.relu()),
    ("k.abs()", lambda t: t.k.abs()),
    ("k.clamp(min=0, max=1)", lambda t: t.k.clamp(min=0, max=1)),
    ("k.max()", lambda t: t.k.max()),
    ("k.min() * 2", lambda t: t.k.min() * 2),
    ("z.norm()", lambda t: t.z.norm()),
    ("z.sqrt()", lambda t: t.z.sqrt()),
    ("z.log()", lambda t: t.z.log()),
    ("1 / z", lambda t: 1 / t.z),
    ("z ** 0.5", lambda t: t.z**0.5),
    ("k.log1p()", lambda t: t.k.log1p()),
    ("k.asin()", lambda t: t.k.asin()),
    ("z.rsqrt()", lambda t: t.z.rsqrt()),
    ("k.floor() * k", lambda t: t.k.floor() * t.k),
    ("(k * 0.5).round() + k", lambda t: (t.k * 0.5).round() + t.k),
    ("k.sign() + k.ceil() + k.trunc()", lambda t: t.k.sign() + t.k.ceil() + t.k.trunc()),
    ("torch.maximum(k, k * 0)", lambda t: torch.maximum(t.k, t.k * 0)),
    ("torch.nn.functional.leaky_relu(k, 0.1)", lambda t: torch.nn.functional.leaky_relu(t.k, 0.1)),
    ("torch.nn.functional.elu(k, 2)", lambda t: torch.nn.functional.elu(t.k, 2)),
    ("torch.nn.functional.hardtanh(k)", lambda t: torch.nn.functional.hardtanh(t.k)),
    ("torch.nn.functional.softplus(k * 30)", lambda t: torch.nn.functional.softplus(t.k * 30)),
    ("torch.minimum(k, k * 0) * 3", lambda t: torch.minimum(t.k, t.k * 0) * 3),
    ("k.prod() + k.relu().prod() + (k * k).prod()", lambda t: t.k.prod() + t.k.relu().prod() + (t.k * t.k).prod()),
    ("z.std() + k.std()", lambda t: t.z.std() + t.k.std()),
    ("k.view(2, 2).max(1).values + k.view(2, 2).min(0)[0]", lambda t: t.k.view(2, 2).max(1).values + t.k.view(2, 2).min(0)[0]),
    ("torch.nn.functional.l1_loss(k, k * 0, reduction='none')",
     lambda t: torch.nn.functional.l1_loss(t.k, t.k * 0, reduction="none")),
    ("torch.nn.functional.smooth_l1_loss(k, k * 0) + torch.nn.functional.huber_loss(k, k * 0, delta=1)",
     lambda t: torch.nn.functional.smooth_l1_loss(t.k, t.k * 0) + torch.nn.functional.huber_loss(t.k, t.k * 0, delta=1)),
    ("k.clamp_min(0) * torch.clamp_max(k, 1) + k.clamp_max(max=0.5)",
     lambda t: t.k.clamp_min(0) * torch.clamp_max(t.k, 1) + t.k.clamp_max(max=0.5)),
    ("torch.nn.functional.normalize(z.view(1, 2)) * 3 + k.view(2, 2).norm(dim=0).sum()",
     lambda t: torch.nn.functional.normalize(t.z.view(1, 2)) * 3 + t.k.view(2, 2).norm(dim=0).sum()),
]


def _used(expr: str, pool: dict) -> dict:
    return {n: v for n, v in pool.items() if re.search(rf"\b{n}\b", expr)}


def _gradient(shape: tuple[int, ...]):
    cycle = [0.5, -1.0, 1.5, 2.0, -0.25]
    flat = [cycle[i % len(cycle)] for i in range(numel(shape))]

    def nest(values, shape):
        if not shape:
            return values[0]
        size = numel(shape[1:])
        return [nest(values[i * size:(i + 1) * size], shape[1:]) for i in range(shape[0])]

    return nest(flat, shape)


def _mirror(expr: str, fn, pool: dict):
    """Run the case through torch directly and through derive (with the same gradient); return both."""
    used = _used(expr, pool)
    leaves = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in used.items()}
    y = fn(SimpleNamespace(**leaves))
    shape = tuple(y.shape)
    g = None if numel(shape) == 1 else torch.tensor(_gradient(shape), dtype=torch.float64)
    y.backward(g)
    backward = "y" if g is None else ("y", _gradient(shape))
    d = run_spec({n: (v, True) for n, v in used.items()}, {"y": expr}, backward)
    return d, y, leaves


def _assert_close(ours, theirs, label):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if math.isnan(b):
            assert math.isnan(a), f"{label}[{k}]: derived {a}, torch nan"
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), f"{label}[{k}]: derived {a}, torch {b}"


# Step functions: sympy.diff leaves floor's derivative unevaluated (it has none at the jumps), so torch is the oracle.
STEP_CASES = [
    ("torch.floor(a * 3) + a", lambda t: torch.floor(t.a * 3) + t.a),
    ("(a * 3).ceil() * a", lambda t: (t.a * 3).ceil() * t.a),
    ("torch.round(a * 3) * a", lambda t: torch.round(t.a * 3) * t.a),
    ("a.trunc() + a * 2", lambda t: t.a.trunc() + t.a * 2),
]

# Activations written piecewise (torch's branches, as custom functions): sympy.diff leaves their derivative
# unevaluated, so torch is the oracle.
PIECEWISE_CASES = [
    ("torch.nn.functional.leaky_relu(a) + torch.nn.functional.leaky_relu(a, 0.2)",
     lambda t: torch.nn.functional.leaky_relu(t.a) + torch.nn.functional.leaky_relu(t.a, 0.2)),
    ("torch.nn.functional.elu(a) * torch.nn.functional.elu(a, alpha=0.5)",
     lambda t: torch.nn.functional.elu(t.a) * torch.nn.functional.elu(t.a, alpha=0.5)),
    ("torch.nn.functional.hardtanh(a) + torch.nn.functional.hardtanh(a, -0.25, 0.75)",
     lambda t: torch.nn.functional.hardtanh(t.a) + torch.nn.functional.hardtanh(t.a, -0.25, 0.75)),
    ("torch.nn.functional.softplus(a) + torch.nn.functional.softplus(a * 9, beta=2, threshold=10)",
     lambda t: torch.nn.functional.softplus(t.a) + torch.nn.functional.softplus(t.a * 9, beta=2, threshold=10)),
    # where and masked_fill choose by a comparison, which sympy.diff does not differentiate through either
    ("torch.where(a > 0, a, 0.1 * a)", lambda t: torch.where(t.a > 0, t.a, 0.1 * t.a)),
    ("torch.where(a >= p, 2.0, p) + a.where(p < 1, p * 3)", lambda t: torch.where(t.a >= t.p, 2.0, t.p) + t.a.where(t.p < 1, t.p * 3)),
    ("a.masked_fill(a < 0, 0.5) * torch.masked_fill(p, p == 1, -2)",
     lambda t: t.a.masked_fill(t.a < 0, 0.5) * torch.masked_fill(t.p, t.p == 1, -2)),
    ("torch.where(k != 0, 1 / k, k) + k.masked_fill(k <= 0, 1.0)",
     lambda t: torch.where(t.k != 0, 1 / t.k, t.k) + t.k.masked_fill(t.k <= 0, 1.0)),
]

# Ops that cut the graph: torch does not differentiate through them, and neither does sympy.diff of Detached.
CUT_CASES = [
    ("a.detach() * a + b", lambda t: t.a.detach() * t.a + t.b),
]


@pytest.mark.parametrize(("expr", "fn"), CASES + KINK_CASES + STEP_CASES + PIECEWISE_CASES + CUT_CASES,
                         ids=[c[0] for c in CASES + KINK_CASES + STEP_CASES + PIECEWISE_CASES + CUT_CASES])
def test_op_matches_torch(expr, fn):
    """The value, every leaf's grad and the grad_fn name agree with torch."""
    pool = {**INPUTS, **KINKS}
    d, y, leaves = _mirror(expr, fn, pool)
    assert [to_float(v) for v in d.values["y"]] == pytest.approx(
        y.detach().reshape(-1).tolist(), rel=1e-9, abs=1e-12, nan_ok=True
    )
    for name, t in leaves.items():
        _assert_close([to_float(v) for v in d.grads[name]], t.grad.reshape(-1).tolist(), f"{name}.grad")
    assert d.graph.grad_fn(d.graph.node("y")) == y.grad_fn.name()


@pytest.mark.parametrize(("expr", "fn"), CASES + CUT_CASES, ids=[c[0] for c in CASES + CUT_CASES])
def test_chain_rule_equals_sympy_diff(expr, fn):
    """The Jacobian assembled by the chain rule equals sympy.diff of the fully substituted expression."""
    used = _used(expr, INPUTS)
    d, _, _ = _mirror(expr, fn, INPUTS)
    outputs = full_expression(d, "y")
    env = {s: v for n in used for s, v in zip(d.symbols[n], d.values[n])}
    (p,) = d.passes
    for leaf, rows in p.jacobians.items():
        for r, out in enumerate(outputs):
            for c, sym in enumerate(d.symbols[leaf]):
                expected = evaluate(sp.diff(_written_out(out), sym), env)
                assert to_float(rows[r][c]) == pytest.approx(to_float(expected), rel=1e-12, abs=1e-14)


def _written_out(expr: sp.Expr) -> sp.Expr:
    """Return an expression with layer_norm's group mean and variance as sums, so sympy.diff needs none of ours."""
    from generator.ops.derivatives import GroupMean, GroupVar

    def variance(*m):
        mean = sp.Add(*m) / len(m)
        return sp.Add(*((x - mean) ** 2 for x in m)) / len(m)

    return expr.replace(GroupMean, lambda *m: sp.Add(*m) / len(m)).replace(GroupVar, variance)


def test_kinks_are_reported():
    """Every kink case names its convention in the pass, so the document can say so."""
    keys = set()
    for expr, fn in KINK_CASES:
        d, _, _ = _mirror(expr, fn, KINKS)
        keys |= {k.key for k in d.passes[0].kinks}
    assert keys == {"relu0", "abs0", "clamp_edge", "tie", "norm0", "sqrt0", "log0", "div0", "pow0", "log1p", "asin1",
                    "rsqrt0", "step", "tie2", "leaky0", "elu0", "hardtanh_edge", "softplus_linear", "std0", "tie_first"}


@pytest.mark.parametrize("expr", ["torch.nn.functional.elu(x).norm()", "x.relu().norm() + x.clamp(min=0).norm()",
                                  "torch.nn.functional.softplus(x).norm()"])
def test_a_function_squared_inside_a_norm_is_written(expr, tmp_path):
    """A custom function to a power (elu(a)² in a norm) is written as (elu(a))², not an internal error (long run)."""
    from .helpers import invoke

    spec = tmp_path / "s.yaml"
    spec.write_text(f"title: t\ninputs:\n  x:\n    value: [0.1, -1.5, 1]\n    requires_grad: true\nsteps:\n"
                    f"  out: {expr}\nbackward: out\n")
    result = invoke("build", spec, "--out", tmp_path / "out", "--format", "md")
    assert (result.exit_code, result.stdout) == (0, "1 built, 0 failed\n"), result.stderr
