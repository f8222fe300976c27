"""FNO training-step time and memory: pdeopt (JAX) against neuraloperator (PyTorch, CPU).

    python -m experiments.bench_fno                    # all rows, median of 5 steps
    python -m experiments.bench_fno --rows 1d 3d --repeats 5

One training step is forward + backward + Adam update (learning rate 1e-3) of the mean squared
error against a random target, float32 on both sides:

- pdeopt: `pdeopt.models.FNO`, `jax.vmap`ped over the batch, stepped by
  `pdeopt.training.train_step` (one `eqx.filter_jit` with `optax.adam`);
- neuraloperator: `neuralop.models.FNO` in eager PyTorch with `torch.optim.Adam` and
  `torch.set_num_threads(<usable cores>)` (`--torch-threads` to change it).

The architectures match: linear lift, `depth` Fourier layers `SpectralConv(v) + W v` with GELU
(tanh approximation on both sides, pdeopt's default) between them, a two-layer pointwise
projection through `projection_channels`; neuraloperator with `positional_embedding=None`,
`use_channel_mlp=False`, `fno_skip="linear"`, `lifting_channel_ratio=0` and no domain padding.
Modes: pdeopt's `m` keeps the frequencies `-m, ..., m-1` on every axis but the last and `0,
..., m-1` on the last (real-FFT) axis; neuraloperator's `n_modes` counts the kept frequencies
on every axis and keeps `n // 2 + 1` on the last, so pdeopt's `(m_0, ..., m_d)` is
neuraloperator's `(2 m_0, ..., 2 m_{d-1} - 2)`, and both spectral weights hold `width · width ·
2 m_0 ⋯ m_d` complex numbers. Parameter counts count a complex weight as two reals; each layer
has `width` extra biases on both sides (pdeopt on the pointwise skip, neuraloperator on the
spectral convolution), so the counts agree exactly. One difference is neuraloperator's: with
`use_channel_mlp=False`, its `FNOBlocks` applies the activation twice between Fourier layers
(GELU(GELU(v))), one extra elementwise op per layer.

Timing (`experiments._report.time_alternating`): after compilation (pdeopt) and warm-up steps
(one for pdeopt, three for neuraloperator, whose memory is measured first), the two steps run in
alternation `--repeats` times (so load changes hit both) and the median wall time of each is
printed, with the ratio pdeopt / neuraloperator (< 1 means pdeopt is faster; target <= 0.8).

Peak memory is only indicative on a CPU. pdeopt: XLA's compile-time estimate of the jitted
step (argument + output + temporary bytes; parameters and Adam state are counted twice, as
inputs and as outputs, since the step does not donate its buffers). neuraloperator: the bytes
live in PyTorch's CPU allocator at the start of a step (parameters, Adam state, batch) plus
the maximum of the running sum of the allocations and frees that `torch.profiler`
(`profile_memory=True`) records during one step.

Needs torch and neuraloperator: `pip install -e ".[bench]"`.
"""

import argparse
import os
from functools import partial

import numpy as np

from experiments._report import markdown_row, markdown_table, print_fingerprint, time_alternating

# name: (spatial shape, in_channels, width, pdeopt modes, batch). The 2-D and 3-D batches are 1
# so that the whole run stays within minutes on a shared 2-core CPU.
ROWS = {
    "1d": ((1024,), 2, 64, (16,), 4),
    "2d-32": ((101, 1024), 3, 32, (12, 12), 1),
    "2d-64": ((101, 1024), 3, 64, (12, 12), 1),
    "3d": ((32, 32, 32), 4, 32, (8, 8, 8), 1),
}
DEPTH = 4
PROJECTION_CHANNELS = 128
OUT_CHANNELS = 1
LEARNING_RATE = 1.0e-3


def _import_torch():
    try:
        import neuralop
        import torch
    except ImportError as e:
        raise SystemExit(
            "experiments.bench_fno compares against neuraloperator (PyTorch), which is not "
            'installed. Install the benchmark extras: pip install -e ".[bench]"'
        ) from e
    return torch, neuralop


def _ours(spatial, in_channels, width, modes, x, y):
    """A jitted pdeopt training step (no arguments; it updates the model it closes over) and its
    compiled peak bytes."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import optax

    from pdeopt.models import FNO, parameter_count
    from pdeopt.training import train_step

    model = FNO(
        in_channels,
        OUT_CHANNELS,
        width,
        modes,
        DEPTH,
        projection_channels=PROJECTION_CHANNELS,
        dtype=jnp.float32,
        key=jr.key(0),
    )
    optimizer = optax.adam(LEARNING_RATE)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    batch = (jnp.asarray(x), jnp.asarray(y))
    key = jr.key(1)

    def loss_fn(model, batch, key):
        del key
        inputs, target = batch
        return jnp.mean((jax.vmap(model)(inputs) - target) ** 2), {}

    def step():
        nonlocal model, opt_state
        model, opt_state, loss, _ = train_step(model, opt_state, loss_fn, optimizer, batch, key)
        return eqx.filter((model, opt_state, loss), eqx.is_array)

    args = (model, opt_state, loss_fn, optimizer, batch, key)
    analysis = train_step.lower(*args).compile().compiled.memory_analysis()
    peak = -1
    if analysis is not None:
        peak = (
            analysis.argument_size_in_bytes
            + analysis.output_size_in_bytes
            + analysis.temp_size_in_bytes
        )
    return step, parameter_count(model), peak


def _theirs(torch, spatial, in_channels, width, modes, x, y):
    """An eager neuraloperator training step (no arguments) and its measured peak bytes."""
    import torch.nn.functional as F
    from neuralop.models import FNO

    torch.manual_seed(0)
    model = FNO(
        n_modes=tuple(2 * m for m in modes[:-1]) + (2 * modes[-1] - 2,),
        in_channels=in_channels,
        out_channels=OUT_CHANNELS,
        hidden_channels=width,
        n_layers=DEPTH,
        lifting_channel_ratio=0,
        projection_channel_ratio=PROJECTION_CHANNELS / width,
        positional_embedding=None,
        non_linearity=partial(F.gelu, approximate="tanh"),
        use_channel_mlp=False,
        fno_skip="linear",
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    # Channel-first copies of the same batch.
    inputs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    target = torch.from_numpy(np.ascontiguousarray(np.moveaxis(y, -1, 1)))

    def step():
        loss = torch.mean((model(inputs) - target) ** 2)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def nbytes(t):
        return t.numel() * t.element_size()

    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    step()  # Creates the Adam state.
    resident = (
        sum(nbytes(p) for p in model.parameters())
        + sum(nbytes(v) for s in optimizer.state.values() for v in s.values())
        + nbytes(inputs)
        + nbytes(target)
    )
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        step()
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    live = extra = 0
    for _, n in events:
        live += n
        extra = max(extra, live)
    return step, params, resident + extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per side")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch.set_num_threads (default: the usable cores)",
    )
    args = parser.parse_args(argv)
    torch, neuralop = _import_torch()  # Fail fast, before any compilation.
    torch.set_num_threads(args.torch_threads)

    print_fingerprint(
        torch=f"{torch.__version__} ({torch.get_num_threads()} threads)",
        neuraloperator=neuralop.__version__,
    )
    print(
        f"FNO training step (forward + backward + Adam), float32, depth {DEPTH}, projection "
        f"{PROJECTION_CHANNELS}, out_channels {OUT_CHANNELS}, median of {args.repeats} steps "
        "after warm-up; ratio = pdeopt / neuraloperator time\n"
    )
    header = [
        "row",
        "grid",
        "batch",
        "in",
        "width",
        "modes (pdeopt / neuralop)",
        "params pdeopt",
        "params neuralop",
        "pdeopt ms",
        "neuralop ms",
        "ratio",
        "≤ 0.8?",
        "pdeopt MiB",
        "neuralop MiB",
    ]
    print(markdown_table(header, []))
    rng = np.random.default_rng(0)
    for name in args.rows:
        spatial, in_channels, width, modes, batch = ROWS[name]
        x = rng.standard_normal((batch, *spatial, in_channels), dtype=np.float32)
        y = rng.standard_normal((batch, *spatial, OUT_CHANNELS), dtype=np.float32)
        ours, ours_params, ours_peak = _ours(spatial, in_channels, width, modes, x, y)
        theirs, theirs_params, theirs_peak = _theirs(
            torch, spatial, in_channels, width, modes, x, y
        )
        timings = time_alternating({"pdeopt": ours, "neuralop": theirs}, args.repeats)
        t_ours, t_theirs = timings["pdeopt"].median, timings["neuralop"].median
        their_modes = tuple(2 * m for m in modes[:-1]) + (2 * modes[-1] - 2,)
        ratio = t_ours / t_theirs
        cells = [
            name,
            "×".join(map(str, spatial)),
            batch,
            in_channels,
            width,
            f"{modes} / {their_modes}",
            f"{ours_params:,}",
            f"{theirs_params:,}",
            f"{1e3 * t_ours:.1f}",
            f"{1e3 * t_theirs:.1f}",
            f"{ratio:.2f}",
            "yes" if ratio <= 0.8 else "no",
            f"{ours_peak / 2**20:.0f}",
            f"{theirs_peak / 2**20:.0f}",
        ]
        print(markdown_row(cells), flush=True)
    print(f"\nload average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
