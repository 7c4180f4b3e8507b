"""torch's CPU random numbers after torch.manual_seed(n), drawn as torch draws them, without torch.

torch's default CPU generator is a 32-bit Mersenne Twister (at::mt19937, seeded with the seed's low 32
bits). torch.rand takes 24 random bits per float32 and 53 per float64 (two 32-bit draws, the first the
high half); torch.randn turns uniforms into normals by Box-Muller: one pair at a time through a cached
double for fewer than 16 elements (aten/src/ATen/core/DistributionsHelper.h), in blocks of 16 for more
(aten/src/ATen/native/cpu/DistributionTemplates.h). The block code for float32 is vector code chosen by the
CPU (AVX2 or not), so those numbers differ between machines: they are refused. Everything else here uses
the C library's log1p, log, sin, cos and sqrt in double precision, as torch's scalar code does, and
Python's math module calls the same functions.

torch.randint(low, high) keeps `bits % (high - low) + low` (64 bits for a range of 2**32 or more), and
torch.randperm(n) shuffles 0..n-1 as Fisher-Yates does, drawing `bits % (n - i)` for each place i
(aten/src/ATen/native/TensorFactories.cpp). normal_(mean, std) and uniform_(a, b) end with x * scale + shift,
which a compiler may fuse into one rounding (FMA) in the kernels built for newer CPUs: a number where the fused
and the two-step result differ is refused, so every number given is the same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..floats.ieee import nearest

BLOCK = 16  # torch's normal_fill draws normals 16 at a time for this many elements or more
MASK32 = 0xFFFFFFFF
LARGEST = {"float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


class SeededError(ValueError):
    """A draw derive cannot make as torch makes it, and what can be drawn instead."""

    def __init__(self, message: str, allowed: str) -> None:
        super().__init__(message)
        self.allowed = allowed


@dataclass
class Generator:
    """torch's default CPU generator after torch.manual_seed(seed): its Mersenne Twister and its cached normal."""

    seed: int
    state: np.ndarray = field(init=False, repr=False)
    index: int = field(init=False, default=624)
    cached: float | None = field(init=False, default=None)  # the second normal of the last pair, as torch caches it

    def __post_init__(self) -> None:
        mt = [self.seed & MASK32]
        for i in range(1, 624):
            mt.append((1812433253 * (mt[-1] ^ (mt[-1] >> 30)) + i) & MASK32)
        self.state = np.array(mt, dtype=np.uint64)

    def _twist(self) -> None:
        mt = [int(v) for v in self.state]
        for i in range(624):
            y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
            mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        self.state = np.array(mt, dtype=np.uint64)
        self.index = 0

    def random(self) -> int:
        """Return the next 32 random bits."""
        if self.index >= 624:
            self._twist()
        y = int(self.state[self.index])
        self.index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        return y ^ (y >> 18)

    def random64(self) -> int:
        """Return 64 random bits: two draws, the first the high half."""
        high = self.random()
        return (high << 32) | self.random()

    def uniform(self, dtype: str) -> float:
        """Return a uniform number in [0, 1) as torch's uniform_real_distribution of this dtype does."""
        if dtype == "float64":
            return (self.random64() & ((1 << 53) - 1)) * 2.0**-53
        return (self.random() & ((1 << 24) - 1)) * 2.0**-24

    def randint(self, count: int, low: int, high: int) -> list[int]:
        """Return torch.randint(low, high, ...)'s numbers for `count` elements of int64."""
        span = high - low
        draw = self.random64 if span >= 1 << 32 else self.random
        return [draw() % span + low for _ in range(count)]

    def randperm(self, n: int) -> list[int]:
        """Return torch.randperm(n): 0..n-1 shuffled, place i swapped with i + bits % (n - i)."""
        order = list(range(n))
        for i in range(n - 1):
            z = i + self.random() % (n - i)
            order[i], order[z] = order[z], order[i]
        return order

    def uniform_fill(self, count: int, low: float, high: float, dtype: str) -> list[float]:
        """Return tensor.uniform_(low, high)'s numbers: each uniform x as x * (high - low) + low in the dtype."""
        low, high = _cast(low, dtype), _cast(high, dtype)
        span = _cast(float(nearest(Fraction(high) - Fraction(low), dtype)), dtype)
        return [_affine(self.uniform(dtype), span, low, dtype, f"uniform_'s number {i}") for i in range(count)]

    def normal_fill(self, count: int, mean: float, std: float, dtype: str) -> list[float]:
        """Return tensor.normal_(mean, std)'s numbers: torch.randn's, each as x * std + mean."""
        if count >= BLOCK or dtype == "float64":  # the block code and the double code scale in the dtype
            return [_affine(v, std, mean, dtype, f"normal_'s number {i}") for i, v in enumerate(self.randn(count, dtype))]
        # fewer than 16 float32: a double normal, scaled in double, then rounded to float32
        return [float(np.float32(_affine(self.normal(), std, mean, "float64", f"normal_'s number {i}")))
                for i in range(count)]

    def normal(self) -> float:
        """Return a standard normal as torch's normal_distribution<double> does: a Box-Muller pair, one kept."""
        if self.cached is not None:
            value, self.cached = self.cached, None
            return value
        u1 = self.uniform("float64")
        u2 = self.uniform("float64")
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self.cached = r * math.sin(theta)
        return r * math.cos(theta)

    def rand(self, count: int, dtype: str) -> list[float]:
        """Return torch.rand's numbers for `count` elements of this dtype."""
        return [self.uniform(dtype) for _ in range(count)]

    def randn(self, count: int, dtype: str) -> list[float]:
        """Return torch.randn's numbers for `count` elements of this dtype, or raise SeededError."""
        if count < BLOCK:
            values = [self.normal() for _ in range(count)]
            return [float(np.float32(v)) for v in values] if dtype == "float32" else values
        if dtype == "float32":
            raise SeededError(f"torch draws float32 normals for 16 or more elements (here {count}) with vector code"
                              " that the CPU chooses (AVX2 or not), so their last bits differ between machines",
                              "fewer than 16 elements in float32, or dtype=torch.float64")
        data = [self.uniform("float64") for _ in range(count)]
        for start in range(0, count - BLOCK + 1, BLOCK):
            _box_muller_16(data, start)
        if count % BLOCK:
            start = count - BLOCK
            data[start:] = [self.uniform("float64") for _ in range(BLOCK)]
            _box_muller_16(data, start)
        return data


def _box_muller_16(data: list[float], start: int) -> None:
    """Turn 16 uniforms into 16 normals in place, as torch's NormalFill16 does in double precision."""
    for j in range(8):
        u1 = 1.0 - data[start + j]
        u2 = data[start + j + 8]
        radius = math.sqrt(-2.0 * math.log(u1))
        theta = 2.0 * math.pi * u2
        data[start + j] = radius * math.cos(theta)
        data[start + j + 8] = radius * math.sin(theta)


def _cast(value: float, dtype: str) -> float:
    """Return a number as the dtype holds it."""
    return float(np.float32(value)) if dtype == "float32" else float(value)


def _affine(x: float, scale: float, shift: float, dtype: str, what: str) -> float:
    """Return x * scale + shift rounded as torch's kernel rounds it, fused (FMA) or not, or raise SeededError."""
    if shift == 0:  # one rounding either way
        fused = nearest(Fraction(x) * Fraction(scale), dtype)
    else:
        fused = nearest(Fraction(x) * Fraction(scale) + Fraction(shift), dtype)
        if fused != nearest(nearest(Fraction(x) * Fraction(scale), dtype) + Fraction(shift), dtype):
            raise SeededError(f"{what} is x * scale + shift, which compilers fuse into one rounding (FMA) for some"
                              " CPUs and not for others, and here the two differ in the last bit",
                              "numbers that round alike either way, such as uniform_(-1, 1) or normal_(0, 0.02)")
    if abs(fused) > LARGEST[dtype]:
        raise SeededError(f"{what} is beyond {dtype}'s range", "a smaller scale")
    return float(fused)
