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
