"""Run by tests/test_mesh.py in a subprocess with 8 emulated CPU devices: train a few steps
on one device and on each mesh, print the largest relative parameter difference per case.

Usage: python tests/_mesh_equality.py PROBLEM:CONSTRAINT:DATAxEXPERTS,... (e.g.
`burgers:soft:8x1,sorption:moe:2x4`); prints one line `<case> max_rel=<x> ...` per case: the
largest relative difference of a parameter array, of the last loss and of `predict`.
"""

import os
import sys

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from pdeopt.constraints import HardConstraint, MoEHardConstraint, SoftConstraint  # noqa: E402
from pdeopt.models import FNO  # noqa: E402
from pdeopt.solvers import LevenbergMarquardt  # noqa: E402
from pdeopt.training import PhysicsLoss, fit, make_mesh, predict  # noqa: E402


def problem(name):
    if name == "burgers":
        from problems.burgers import Burgers

        pde = Burgers(nx=16, nt=5)
        x = jnp.linspace(0, 2 * jnp.pi, 16, endpoint=False)
        conditions = jnp.sin(x)[None] * jnp.linspace(0.5, 1.5, 16)[:, None]
    else:
        from problems.diffusion_sorption import DiffusionSorption

        pde = DiffusionSorption(nx=16, nt=5)
        conditions = jnp.linspace(0.02, 0.18, 16)[:, None] * jnp.ones((1, 16))
    return pde, conditions


# Solves to rounding: a tolerance-based stop must not flip between summation orders.
SOLVER = LevenbergMarquardt(rtol=1e-12, atol=1e-14)
# Well-conditioned solves: rounding differences (summation order) are not amplified.
RIDGE = float(os.environ.get("MESH_TEST_RIDGE", "1e-2"))


def constraint(name):
    if name == "soft":
        return SoftConstraint()
    if name == "hard":
        return HardConstraint(num_basis=4, num_points=24, throw=False, solver=SOLVER, ridge=RIDGE)
    # 8 experts: divisible by every experts axis of the meshes (1, 2, 4, 8).
    return MoEHardConstraint(
        parts=(1, 8),
        num_basis=4,
        num_points=8,
        throw=False,
        vectorize_experts=False,
        solver=SOLVER,
        ridge=RIDGE,
    )


def train(pde, conditions, c, mesh):
    loss = PhysicsLoss(pde, c)
    model = FNO(
        3, c.num_outputs, width=4, modes=(2, 4), depth=1, projection_channels=4, key=jr.key(0)
    )
    model, history = fit(
        model,
        loss,
        optax.sgd(1e-3),  # not Adam: its first step is ±lr whatever the gradient, noise too
        conditions,
        steps=2,
        batch_size=8,
        key=jr.key(1),
        progress=False,
        mesh=mesh,
    )
    pred = predict(loss.predict_one, model, conditions[:5], jr.key(2), 4, mesh=mesh)[0]
    return eqx.filter(model, eqx.is_inexact_array), history[-1]["loss"], np.asarray(pred)


def rel(a, b):
    a, b = jax.tree.leaves(a), jax.tree.leaves(b)
    return max(
        float(
            np.linalg.norm(np.asarray(x) - np.asarray(y))
            / max(np.linalg.norm(np.asarray(y)), 1e-300)
        )
        for x, y in zip(a, b)
    )


def main(cases):
    references = {}
    for case in cases:
        pname, cname, shape = case.split(":")
        data, experts = (int(n) for n in shape.split("x"))
        pde, conditions = problem(pname)
        c = constraint(cname)
        if (pname, cname) not in references:
            references[pname, cname] = train(pde, conditions, c, None)
        ref = references[pname, cname]
        got = train(pde, conditions, c, make_mesh(data, experts))
        print(
            f"{case} max_rel={rel(got[0], ref[0]):.3e} "
            f"loss_rel={abs(got[1] - ref[1]) / abs(ref[1]):.3e} "
            f"predict_rel={rel(got[2], ref[2]):.3e}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1].split(","))
