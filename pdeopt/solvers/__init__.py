"""Numerical linear algebra and equality-constrained optimisation (no models, no PDEs)."""
