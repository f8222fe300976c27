"""Optimisers."""

import math

import optax


def make_optimizer(
    learning_rate: float = 1.0e-3,
    decay_rate: float = 0.5,
    decay_every: int = 800,
    min_learning_rate: float = 1.0e-4,
    clip_norm: float | None = 1.0,
) -> optax.GradientTransformation:
    """Adam with the PI-HC-MoE step schedule and global-norm clipping.

    The learning rate is `learning_rate · decay_rate^⌊step / decay_every⌋`, floored at
    `min_learning_rate` (the paper's diffusion–sorption schedule: 1e-3 halved every 800 steps,
    floored at 1e-4). Gradients are clipped to global norm `clip_norm` first (None: no
    clipping). Non-finite gradients are not hidden: they make the loss non-finite, which the
    training loop reports.

    **Arguments:** as above.

    **Returns:** an `optax.GradientTransformation`.
    """
    numbers = {
        "learning_rate": learning_rate,
        "decay_rate": decay_rate,
        "min_learning_rate": min_learning_rate,
        "clip_norm": clip_norm,
    }
    for name, value in numbers.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"optimizer.{name} must be a finite number, got {value!r}.")
    if learning_rate <= 0:
        raise ValueError(f"optimizer.learning_rate must be > 0, got {learning_rate!r}.")
    if not isinstance(decay_every, int) or decay_every < 1:
        raise ValueError(f"optimizer.decay_every must be a positive integer, got {decay_every!r}.")
    if not 0 < decay_rate <= 1:
        raise ValueError(f"optimizer.decay_rate must lie in (0, 1], got {decay_rate!r}.")
    if not 0 <= min_learning_rate <= learning_rate:
        raise ValueError(
            f"optimizer.min_learning_rate must lie in [0, learning_rate], got {min_learning_rate}."
        )
    schedule = optax.exponential_decay(
        learning_rate,
        transition_steps=decay_every,
        decay_rate=decay_rate,
        staircase=True,
        end_value=min_learning_rate,
    )
    adam = optax.adam(schedule)
    if clip_norm is None:
        return adam
    if clip_norm <= 0:
        raise ValueError(f"optimizer.clip_norm must be > 0 or null, got {clip_norm!r}.")
    return optax.chain(optax.clip_by_global_norm(clip_norm), adam)
