"""Error metrics."""

import jax.numpy as jnp
from jaxtyping import Array, Float


def relative_l2(
    prediction: Float[Array, "*field"], reference: Float[Array, "*field"]
) -> Float[Array, ""]:
    """Relative L2 error ‖prediction − reference‖₂ / ‖reference‖₂ over one whole field.

    This is the per-sample relative L2 over space–time used by the PI-HC-MoE paper; batch it
    with `jax.vmap` and report mean ± std over samples. It is not PDEBench's nRMSE, which
    normalises frame by frame.

    **Arguments:**

    - `prediction`, `reference`: arrays of the same shape (one sample).

    **Returns:** a scalar.
    """
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} does not match reference shape {reference.shape}."
        )
    return jnp.linalg.norm((prediction - reference).ravel()) / jnp.linalg.norm(reference.ravel())
