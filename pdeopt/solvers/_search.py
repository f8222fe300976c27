"""Backtracking Armijo search on a merit function."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int


class BacktrackingArmijo(eqx.Module):
    """Armijo backtracking: α = 1, ½, ¼, … until φ(α) ≤ φ(0) + α·s, where s is β times the
    directional derivative of the merit φ along the step (s < 0 for a descent step).

    Round-off: close to a solution the decrease α·s that Armijo asks for can fall below the
    rounding error of φ itself (a sum of millions of terms), and the test then rejects a good
    step by chance. With a `roundoff` > 0, a trial that misses the bound by at most `roundoff`
    is accepted too when the caller's second measure of progress, `progress(α, aux)`, holds
    (the same relaxation by a multiple of the machine epsilon times |φ| as in IPOPT's line
    search, Wächter and Biegler 2006, there without a second measure).

    There is no minimum α: the search ends unaccepted after `max_steps` halvings, and the
    caller decides what that means.

    **Arguments:**

    - `max_steps`: the cap on trials (static; 60).
    """

    max_steps: int = eqx.field(static=True, default=60)

    def __check_init__(self):
        if self.max_steps < 1:
            raise ValueError(f"`BacktrackingArmijo(max_steps={self.max_steps})` must be ≥ 1.")

    def search(
        self,
        merit: Callable[[Float[Array, ""]], tuple[Float[Array, ""], Any]],
        merit0: Float[Array, ""],
        slope: Float[Array, ""],
        aux0: Any,
        roundoff: Float[Array, ""] | float = 0.0,
        progress: Callable[[Float[Array, ""], Any], Bool[Array, ""]] | None = None,
    ) -> tuple[Float[Array, ""], Bool[Array, ""], Any, Int[Array, ""]]:
        """Run the search.

        **Arguments:**

        - `merit`: α ↦ (φ(α), aux), aux being whatever the caller wants at the accepted α.
        - `merit0`: φ(0).
        - `slope`: s, the sufficient-decrease slope.
        - `aux0`: aux before any trial (its structure is the loop's).
        - `roundoff`: the absolute rounding error of φ tolerated with `progress` (0: none).
        - `progress`: (α, aux) ↦ whether the trial makes progress by a second measure; needed
            when `roundoff` may be positive.

        **Returns:**

        `(α, accepted, aux, trials)`: the last α tried, whether it was accepted, its aux and
        the number of trials.
        """

        def cond(carry):
            _, accepted, _, k = carry
            return ~accepted & (k < self.max_steps)

        def body(carry):
            alpha, _, _, k = carry
            alpha = 0.5 * alpha
            value, aux = merit(alpha)
            bound = merit0 + alpha * slope
            accepted = value <= bound
            if progress is not None:
                accepted = accepted | ((value <= bound + roundoff) & progress(alpha, aux))
            return alpha, accepted, aux, k + 1

        # Starts from α = 2 so that the first trial, α = 1, happens inside the loop.
        init = (jnp.array(2.0, merit0.dtype), jnp.array(False), aux0, jnp.array(0))
        return lax.while_loop(cond, body, init)
