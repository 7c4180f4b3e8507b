"""torch's CPU random numbers after torch.manual_seed(n), drawn as torch draws them, without torch.

torch's default CPU generator is a 32-bit Mersenne Twister (at::mt19937, seeded with the seed's low 32
bits). torch.rand takes 24 random bits per float32 and 53 per float64 (two 32-bit draws, the first the
high half); torch.randn turns uniforms into normals by Box-Muller: one pair at a time through a cached
double for fewer than 16 elements (aten/src/ATen/core/DistributionsHelper.h), in blocks of 16 for more
(aten/src/ATen/native/cpu/DistributionTemplates.h). The block code for float32 is vector code chosen by the
CPU (AVX2 or not), so those numbers differ between machines: they are refused. Everything else here uses
the C library's log1p, log, sin, cos and sqrt in double precision, as torch's scalar code does, and
Python's math module calls the same functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BLOCK = 16  # torch's normal_fill draws normals 16 at a time for this many elements or more
MASK32 = 0xFFFFFFFF


class SeededError(ValueError):
    """A draw derive cannot make as torch makes it."""


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
                              " that the CPU chooses (AVX2 or not), so their last bits differ between machines")
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
