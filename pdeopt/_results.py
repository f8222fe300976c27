"""pdeopt's failure modes, as an extension of `optimistix.RESULTS`."""

import optimistix as optx


class RESULTS(optx.RESULTS):  # pyright: ignore[reportGeneralTypeIssues]
    """Outcome of a pdeopt solve. Extends `optimistix.RESULTS` (and so `lineax.RESULTS`).

    Compare with `==`, promote with `RESULTS.promote(...)`, and turn into an error with
    `RESULTS.error_if(...)`, exactly as for optimistix.
    """

    singular_jacobian = (
        "The constraint Jacobian is (numerically) rank deficient: the smallest eigenvalue of "
        "G Gᵀ fell below the singularity threshold."
    )
    penalty_cap = "The penalty parameters reached their caps without a sufficient descent step."
    singular_kkt = (
        "The KKT system could not be solved: the linear solver failed on it (a singular matrix "
        "or a breakdown), also after the practical safeguards' regularised re-solve."
    )
    locally_infeasible = (
        "The constraints look locally infeasible: the iterate is a stationary point of ‖c‖² "
        "with c ≠ 0 (see `stats['constraint_norm']`)."
    )
