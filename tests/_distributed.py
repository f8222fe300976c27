"""Run by tests/test_mesh.py: `python tests/_distributed.py PORT NUM_PROCESSES PROCESS_ID OUT
[STEPS [CHECKPOINTS]]`, each process with 2 emulated CPU devices (XLA_FLAGS). Joins the
processes at localhost:PORT (NUM_PROCESSES=1: no distributed system, the reference), trains a
hard constraint with 2 experts for STEPS steps (default 2) on the mesh (data=all devices / 2,
experts=2), and process 0 saves the parameters to OUT (.npz). With CHECKPOINTS (a folder),
every process checkpoints every step into it and the run continues from its newest
checkpoint."""

import sys

import jax

port, num_processes, process_id, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
steps = int(sys.argv[5]) if len(sys.argv) > 5 else 2
folder = sys.argv[6] if len(sys.argv) > 6 else None
jax.config.update("jax_enable_x64", True)
if num_processes > 1:
    from pdeopt.training import initialize_distributed

    initialize_distributed(f"localhost:{port}", num_processes, process_id)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from pdeopt.constraints import MoEHardConstraint  # noqa: E402
from pdeopt.models import FNO  # noqa: E402
from pdeopt.solvers import LevenbergMarquardt  # noqa: E402
from pdeopt.training import (  # noqa: E402
    Checkpointer,
    PhysicsLoss,
    fit,
    is_main_process,
    make_mesh,
    predict,
)
from problems.burgers import Burgers  # noqa: E402

pde = Burgers(nx=16, nt=5)
x = jnp.linspace(0, 2 * jnp.pi, 16, endpoint=False)
conditions = jnp.sin(x)[None] * jnp.linspace(0.5, 1.5, 16)[:, None]
constraint = MoEHardConstraint(
    parts=(1, 2),
    num_basis=4,
    num_points=16,
    throw=False,
    ridge=1e-2,
    solver=LevenbergMarquardt(rtol=1e-12, atol=1e-14),
)
loss = PhysicsLoss(pde, constraint)
model = FNO(3, 4, width=4, modes=(2, 4), depth=1, projection_channels=4, key=jr.key(0))
mesh = make_mesh(-1, 2)
checkpoints = None
if folder is not None:
    checkpoints = Checkpointer(folder, every=1, config={"steps": steps}, may_differ=["steps"])
    print(f"process {process_id}: checkpoints {checkpoints.steps()}", flush=True)
model, history = fit(
    model,
    loss,
    optax.sgd(1e-3),  # not Adam: its first step is ±lr whatever the gradient, noise too
    conditions,
    steps=steps,
    batch_size=4,
    key=jr.key(1),
    progress=False,
    checkpoints=checkpoints,
    mesh=mesh,
)
if checkpoints is not None:
    checkpoints.close()
pred = predict(loss.predict_one, model, conditions[:3], jr.key(2), 2, mesh=mesh)[0]
if is_main_process():
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    arrays = {f"leaf{i}": np.asarray(a) for i, a in enumerate(leaves)}
    np.savez(out, pred=np.asarray(pred), **arrays)
print(
    f"process {jax.process_index()} of {jax.process_count()}: {jax.device_count()} devices, "
    f"loss {history[-1]['loss']:.6e}, steps {[r['step'] for r in history]}",
    flush=True,
)
