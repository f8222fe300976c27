"""The exact augmented Lagrangian merit and its two gradient variants."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree


def lagrangian_and_constraints(
    fn: Callable, constraint_fn: Callable, x: Array, lam: Array, args: PyTree
) -> tuple[Array, Array]:
    """L(x, λ) = f(x) + λᵀc(x), returned together with c(x) (as auxiliary output)."""
    c = constraint_fn(x, args)
    return fn(x, args) + jnp.dot(lam, c), c


def merit_value(
    fn: Callable,
    constraint_fn: Callable,
    x: Array,
    lam: Array,
    args: PyTree,
    mu: float | Float[Array, ""],
    nu: float | Float[Array, ""],
) -> tuple[Array, Array, Array]:
    """L_{μ,ν}(x, λ) = L + (μ/2)‖c‖² + (ν/2)‖∇ₓL‖².

    **Returns:** `(merit, ∇ₓL, c)` at `(x, λ)`; one evaluation of f, ∇f, c and Gᵀλ.
    """
    (lag, c), grad_x = jax.value_and_grad(lagrangian_and_constraints, argnums=2, has_aux=True)(
        fn, constraint_fn, x, lam, args
    )
    value = lag + 0.5 * mu * jnp.sum(c**2) + 0.5 * nu * jnp.sum(grad_x**2)
    return value, grad_x, c


class AbstractMeritHessian(eqx.Module):
    """Which Hessian the ν-term of ∇L_{μ,ν} uses.

    The ν-term of the merit gradient is `[M ∇ₓL; G ∇ₓL]`; `M` is ∇²ₓL for the exact gradient
    and ∇²f for the reference code's variant.
    """

    @abc.abstractmethod
    def matvec(
        self,
        fn: Callable,
        x: Array,
        args: PyTree,
        lagrangian_hvp: Callable[[Array], Array],
        v: Array,
    ) -> Array:
        """Returns `M v`. `lagrangian_hvp(v)` is ∇²ₓL v at the current iterate."""


class LagrangianHessian(AbstractMeritHessian):
    """M = ∇²ₓL: the exact gradient of L_{μ,ν}, i.e. what `jax.grad` of the merit gives.

    This is pdeopt's default.
    """

    def matvec(self, fn, x, args, lagrangian_hvp, v):
        return lagrangian_hvp(v)


class ObjectiveHessian(AbstractMeritHessian):
    """M = ∇²f: the AdaSketch-Newton reference code's variant (`hess(nlp, x)`).

    Agrees with [`pdeopt.solvers.LagrangianHessian`][] for linear constraints. The Armijo test
    still uses the exact merit value; only the directional derivative ∇L_{μ,ν}ᵀz changes.
    """

    def matvec(self, fn, x, args, lagrangian_hvp, v):
        grad_f = jax.grad(fn)
        return jax.jvp(lambda y: grad_f(y, args), (x,), (v,))[1]
