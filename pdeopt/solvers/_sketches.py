"""Random sketching matrices S ∈ R^{N×q}, represented as linear operators R^q → R^N."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx

from .._custom_types import Key


def check_positive_int(owner: str, field: str, value, hint: str = "") -> None:
    """Raise a `ValueError` naming `owner(field=value)` unless `value` is a positive int."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{owner}({field}={value!r})` must be a positive int{hint}.")


class AbstractSketch(eqx.Module):
    """A distribution over sketching matrices S ∈ R^{N×q}.

    A sketch is drawn with [`pdeopt.solvers.AbstractSketch.draw`][], which returns S as a
    `lineax.AbstractLinearOperator` from R^q to R^N. Then `S.mv(y)` applies S to a q-vector,
    `S.transpose().mv(r)` applies Sᵀ to an N-vector (by `jax.linear_transpose` where S is
    matrix-free), and `S.as_matrix()` produces the dense N×q matrix.

    Sketch-and-project solvers are invariant under S ↦ S M for invertible M, so the scale of
    the entries does not matter there.
    """

    @abc.abstractmethod
    def draw(self, key: Key, num_rows: int, num_cols: int, dtype) -> lx.AbstractLinearOperator:
        """Draw one sketching matrix.

        **Arguments:**

        - `key`: a JAX PRNG key.
        - `num_rows`: N, the dimension of the space being sketched.
        - `num_cols`: q, the sketch size (number of columns of S).
        - `dtype`: the floating dtype of S.

        **Returns:**

        S as a `lineax.AbstractLinearOperator` with input shape `(q,)` and output shape `(N,)`.
        """


class GaussianSketch(AbstractSketch):
    """Dense Gaussian sketch: the entries of S are i.i.d. N(0, 1).

    Drawing costs O(Nq) random numbers; S is stored as a dense matrix.

    ??? cite "References"

        Gower & Richtárik (2015), *Randomized iterative methods for linear systems*; the
        entry is under [`pdeopt.solvers.GaussianSketchProject`][].
    """

    def draw(self, key: Key, num_rows: int, num_cols: int, dtype) -> lx.MatrixLinearOperator:
        return lx.MatrixLinearOperator(jr.normal(key, (num_rows, num_cols), dtype))


def _sparse_sign_operator(
    key: Key, num_rows: int, num_cols: int, nnz: int, dtype
) -> lx.FunctionLinearOperator:
    """S with `nnz` entries ±1/√nnz per row, in distinct uniformly chosen columns."""
    col_key, sign_key = jr.split(key)
    if nnz == 1:
        cols = jr.randint(col_key, (num_rows, 1), 0, num_cols)
    else:
        row_keys = jr.split(col_key, num_rows)
        cols = jax.vmap(lambda k: jr.choice(k, num_cols, (nnz,), replace=False))(row_keys)
    signs = jr.rademacher(sign_key, (num_rows, nnz), dtype) / jnp.sqrt(jnp.asarray(nnz, dtype))

    def mv(y):
        return jnp.sum(signs * y[cols], axis=-1)

    return lx.FunctionLinearOperator(mv, jax.ShapeDtypeStruct((num_cols,), dtype))


class CountSketch(AbstractSketch):
    """CountSketch: each of the N rows of S has a single entry ±1 in a uniformly random column.

    Matrix-free: applying Sᵀ to an N-vector is a scatter-add, O(N); drawing costs O(N).

    ??? cite "References"

        ```bibtex
        @inproceedings{clarkson2013low,
            title={Low rank approximation and regression in input sparsity time},
            author={Clarkson, Kenneth L. and Woodruff, David P.},
            booktitle={Proceedings of the 45th Annual ACM Symposium on Theory of Computing},
            pages={81--90},
            year={2013}
        }
        ```
    """

    def draw(self, key: Key, num_rows: int, num_cols: int, dtype) -> lx.FunctionLinearOperator:
        return _sparse_sign_operator(key, num_rows, num_cols, 1, dtype)


class SparseSignSketch(AbstractSketch):
    """Sparse sign embedding: each of the N rows of S has `nnz_per_column` entries
    ±1/√nnz_per_column in distinct uniformly random columns.

    `nnz_per_column` counts nonzeros per column of the embedding Sᵀ ∈ R^{q×N} (the usual
    convention), i.e. per row of S. Applying Sᵀ costs O(N·nnz_per_column); drawing costs
    O(N·q) when `nnz_per_column > 1` (distinct columns are sampled by a permutation per row).
    `SparseSignSketch(nnz_per_column=1)` has the distribution of `CountSketch()`.

    **Arguments:**

    - `nnz_per_column`: the number ζ of nonzeros per column of Sᵀ; must not exceed the sketch
        size q. Tropp et al. recommend ζ = 8.

    ??? cite "References"

        ```bibtex
        @article{martinsson2020randomized,
            title={Randomized numerical linear algebra: Foundations and algorithms},
            author={Martinsson, Per-Gunnar and Tropp, Joel A.},
            journal={Acta Numerica},
            volume={29},
            pages={403--572},
            year={2020}
        }
        ```
    """

    nnz_per_column: int = eqx.field(static=True, default=8)

    def __check_init__(self):
        check_positive_int("SparseSignSketch", "nnz_per_column", self.nnz_per_column, ", such as 8")

    def draw(self, key: Key, num_rows: int, num_cols: int, dtype) -> lx.FunctionLinearOperator:
        if self.nnz_per_column > num_cols:
            raise ValueError(
                f"`SparseSignSketch(nnz_per_column={self.nnz_per_column})` exceeds the sketch "
                f"size {num_cols}; use `nnz_per_column <= {num_cols}` or a larger block size."
            )
        return _sparse_sign_operator(key, num_rows, num_cols, self.nnz_per_column, dtype)
