"""Run by tests/test_mesh.py in a subprocess with 8 emulated CPU devices: train a few steps
on one device and on each mesh, print the largest relative parameter difference per case.

Usage: python tests/_mesh_equality.py MESHES PROBLEMS CONSTRAINTS
(e.g. `8x1,4x2 burgers,sorption soft,hard,moe`); prints one line `case max_rel=<x>` each.
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402

from pdeopt.constraints import HardConstraint, MoEHardConstraint, SoftConstraint  # noqa: E402
from pdeopt.models import FNO  # noqa: E402
from pdeopt.training import PhysicsLoss, fit, make_mesh, make_optimizer, predict  # noqa: E402


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


def constraint(name):
    if name == "soft":
        return SoftConstraint()
    if name == "hard":
        return HardConstraint(num_basis=4, num_points=24, throw=False)
    # 8 experts: divisible by every experts axis of the meshes (1, 2, 4, 8).
    return MoEHardConstraint(
        parts=(1, 8), num_basis=4, num_points=8, throw=False, vectorize_experts=False
    )


def train(pde, conditions, c, mesh):
    loss = PhysicsLoss(pde, c)
    model = FNO(
        3, c.num_outputs, width=4, modes=(2, 4), depth=1, projection_channels=4, key=jr.key(0)
    )
    model, history = fit(
        model,
        loss,
        make_optimizer(learning_rate=1e-3),
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


def main(meshes, problems, constraints):
    for pname in problems:
        pde, conditions = problem(pname)
        for cname in constraints:
            c = constraint(cname)
            ref = train(pde, conditions, c, None)
            for shape in meshes:
                data, experts = shape
                if experts > 1 and cname != "moe":
                    continue  # nothing to split: check_mesh refuses it (tested separately)
                got = train(pde, conditions, c, make_mesh(data, experts))
                print(
                    f"{pname}/{cname}/{data}x{experts} max_rel={rel(got[0], ref[0]):.3e} "
                    f"loss_rel={abs(got[1] - ref[1]) / abs(ref[1]):.3e} "
                    f"predict_rel={rel(got[2], ref[2]):.3e}",
                    flush=True,
                )


if __name__ == "__main__":
    meshes = [tuple(int(n) for n in m.split("x")) for m in sys.argv[1].split(",")]
    main(meshes, sys.argv[2].split(","), sys.argv[3].split(","))
