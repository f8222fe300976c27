"""pdeopt.training."""
