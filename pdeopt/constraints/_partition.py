"""Static, uniform domain partitions of a grid into experts (index bookkeeping in NumPy)."""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, n + 1) if n % d == 0][:6]


@dataclasses.dataclass(frozen=True)
class Faces:
    """The interface between neighbouring experts along one grid axis.

    For expert k and side s (0: lower, 1: upper), `lower[k, s]` and `upper[k, s]` are the flat
    grid indices of the points just below and just above that face (one row per point of the
    face), and `exists[k, s]` says whether the expert has a neighbour on that side. The face
    value of a field is ½(f[lower] + f[upper]); its normal difference f[upper] − f[lower].
    """

    axis: int
    lower: np.ndarray  # (K, 2, face_points)
    upper: np.ndarray  # (K, 2, face_points)
    exists: np.ndarray  # (K, 2)
    neighbour: np.ndarray  # (K, 2): expert on the other side, or -1


@dataclasses.dataclass(frozen=True)
class Partition:
    """A tensor-product partition of a grid into K = ∏ parts equal blocks ("experts").

    Built once from Python sizes; everything here is a NumPy index array used as a static
    gather/scatter pattern inside jitted code.

    - `points[k]`: the flat grid indices of expert k's block, shape (K, block_size).
    - `owner[p]`: the expert owning flat grid point p.
    - `faces`: one `Faces` per axis with more than one part. On a periodic axis the first
        and last blocks are neighbours across the wrap-around face (last point, first point).
    """

    grid_shape: tuple[int, ...]
    parts: tuple[int, ...]
    periodic: tuple[bool, ...] = ()

    def __post_init__(self):
        if not self.periodic:
            object.__setattr__(self, "periodic", (False,) * len(self.grid_shape))
        if len(self.periodic) != len(self.grid_shape):
            raise ValueError(f"periodic {self.periodic} needs one flag per grid axis.")
        if len(self.parts) != len(self.grid_shape):
            raise ValueError(
                f"partition {self.parts} has {len(self.parts)} entries but the grid "
                f"{self.grid_shape} has {len(self.grid_shape)} axes; give one part count per "
                "axis, time first (e.g. (1, 4) for (t, x))."
            )
        for axis, (n, p) in enumerate(zip(self.grid_shape, self.parts)):
            if not isinstance(p, int) or p < 1:
                raise ValueError(f"partition entries must be positive integers, got {self.parts}.")
            if n % p:
                raise ValueError(
                    f"partition {self.parts} does not divide the {n}-point axis {axis} of the "
                    f"grid {self.grid_shape}; use a divisor of {n} such as "
                    f"{', '.join(map(str, _divisors(n)))}, or change the grid size."
                )

    @property
    def num_experts(self) -> int:
        return math.prod(self.parts)

    @property
    def block_shape(self) -> tuple[int, ...]:
        return tuple(n // p for n, p in zip(self.grid_shape, self.parts))

    def _block_coords(self) -> np.ndarray:
        """(K, ndim) block coordinates of every expert, C order."""
        return np.stack(np.unravel_index(np.arange(self.num_experts), self.parts), axis=-1)

    @property
    def owner(self) -> np.ndarray:
        index = np.indices(self.grid_shape)
        block = [index[d] // b for d, b in enumerate(self.block_shape)]
        return np.ravel_multi_index(block, self.parts).ravel()

    @property
    def points(self) -> np.ndarray:
        owner = self.owner
        return np.stack([np.flatnonzero(owner == k) for k in range(self.num_experts)])

    def owner_of(self, locations: np.ndarray) -> np.ndarray:
        """The expert owning each grid multi-index in `locations` (shape (..., ndim))."""
        block = [locations[..., d] // b for d, b in enumerate(self.block_shape)]
        return np.ravel_multi_index(block, self.parts)

    @property
    def faces(self) -> tuple[Faces, ...]:
        coords = self._block_coords()
        shape, block = self.grid_shape, self.block_shape
        out = []
        for axis, parts in enumerate(self.parts):
            if parts == 1:
                continue
            face_points = math.prod(b for d, b in enumerate(block) if d != axis)
            lower = np.zeros((self.num_experts, 2, face_points), dtype=np.int64)
            upper = np.zeros_like(lower)
            exists = np.zeros((self.num_experts, 2), dtype=bool)
            neighbour = np.full((self.num_experts, 2), -1, dtype=np.int64)
            for k, c in enumerate(coords):
                ranges = [
                    np.arange(c[d] * block[d], (c[d] + 1) * block[d]) for d in range(len(shape))
                ]
                for side, (low, other) in enumerate(
                    (
                        (c[axis] * block[axis] - 1, c[axis] - 1),
                        ((c[axis] + 1) * block[axis] - 1, c[axis] + 1),
                    )
                ):
                    if self.periodic[axis]:
                        low, other = low % shape[axis], other % parts
                    elif not 0 <= other < parts:
                        continue
                    exists[k, side] = True
                    n = c.copy()
                    n[axis] = other
                    neighbour[k, side] = np.ravel_multi_index(tuple(n), self.parts)
                    for target, index in ((lower, low), (upper, (low + 1) % shape[axis])):
                        r = list(ranges)
                        r[axis] = np.array([index])
                        mesh = np.meshgrid(*r, indexing="ij")
                        target[k, side] = np.ravel_multi_index(mesh, shape).ravel()
            out.append(Faces(axis, lower, upper, exists, neighbour))
        return tuple(out)


def partition(
    grid_shape: Sequence[int], parts: Sequence[int], periodic: Sequence[bool] = ()
) -> Partition:
    """`Partition(tuple(grid_shape), tuple(parts), tuple(periodic))`, validated."""
    return Partition(tuple(int(n) for n in grid_shape), tuple(parts), tuple(periodic))
