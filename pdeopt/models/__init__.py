"""pdeopt.models."""
